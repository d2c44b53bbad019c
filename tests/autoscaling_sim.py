"""Ray's autoscaling simulator in a private PID and network namespace (test helper).

``ray.cluster_utils.AutoscalingCluster`` starts a head with ``--autoscaling-config``; its
fake node provider starts a real raylet per "node" when Tune's demand asks for one, as the
cluster launcher would start an instance. Its ``start()`` and ``shutdown()`` run
``ray stop --force``, which ends every Ray process it can see: run this file only through
:func:`run_isolated` (``unshare --pid --fork --mount-proc --net``), where it sees only its own
processes and binds its ports on a private loopback interface.

    unshare --pid --fork --mount-proc --net python tests/autoscaling_sim.py SPEC.json

SPEC: ``{"head": {...resources...}, "workers": {type: {...}}, "commands": [[argv...], ...],
"out": folder}``; each command runs in turn with ``--address auto`` available, its output to
``out/cmd<i>.log`` and its exit code and the cluster's nodes to ``out/result.json``.
Give the simulation its own ``TMPDIR``: PIDs inside the namespace name other processes
outside it, and code that sweeps temp folders of "dead" PIDs must not cross over.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

TIMEOUT_S = 420  # per command; the whole simulation gets 3x


def fake_config(head: dict[str, float], workers: dict[str, Any], max_workers: int) -> dict:
    """The complete fake_multinode cluster config (the wheel lacks Ray's example.yaml)."""
    types = {k: dict(v) for k, v in workers.items()}
    types["ray.head.default"] = {"resources": dict(head), "node_config": {}, "max_workers": 0}
    return {
        "cluster_name": "fake_multinode",
        "max_workers": max_workers,
        "provider": {
            "type": "fake_multinode",
            "use_node_id_as_ip": True,
            "disable_node_updaters": True,
            "disable_launch_config_check": True,
        },
        "available_node_types": types,
        "head_node_type": "ray.head.default",
        "upscaling_speed": 1.0,
        "idle_timeout_minutes": 5,
        "auth": {"ssh_user": "ubuntu"},
        "docker": {},
        "file_mounts": {},
        "cluster_synced_files": [],
        "file_mounts_sync_continuously": False,
        "rsync_exclude": [],
        "rsync_filter": [],
        "initialization_commands": [],
        "setup_commands": [],
        "head_setup_commands": [],
        "worker_setup_commands": [],
        "head_start_ray_commands": [],
        "worker_start_ray_commands": [],
    }


def unshare_works() -> bool:
    """True when this process may create PID + network namespaces (root / CAP_SYS_ADMIN)."""
    if shutil.which("unshare") is None:
        return False
    cmd = ["unshare", "--pid", "--fork", "--mount-proc", "--net", "true"]
    try:
        return subprocess.run(cmd, capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def run_isolated(spec: dict[str, Any], env: dict[str, str], timeout: float = 3 * TIMEOUT_S) -> dict:
    """Run the simulator with ``spec`` in its own namespaces; its ``result.json``."""
    out = Path(spec["out"])
    out.mkdir(parents=True, exist_ok=True)
    (out / "spec.json").write_text(json.dumps(spec))
    cmd = ["unshare", "--pid", "--fork", "--kill-child", "--mount-proc", "--net"]
    cmd += [sys.executable, __file__]
    proc = subprocess.run(
        [*cmd, str(out / "spec.json")], env=env, capture_output=True, text=True, timeout=timeout
    )
    (out / "sim.log").write_text(proc.stdout + proc.stderr)
    result = out / "result.json"
    if proc.returncode != 0 or not result.is_file():
        raise AssertionError(f"simulator failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(result.read_text())


def _main(spec_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    out = Path(spec["out"])
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    from ray.cluster_utils import AutoscalingCluster

    class Sim(AutoscalingCluster):
        def _generate_config(self, head_resources, worker_node_types, **_: Any) -> dict:
            return fake_config(head_resources, worker_node_types, spec.get("max_workers", 10))

    sim = Sim(head_resources=dict(spec["head"]), worker_node_types=spec["workers"])
    codes: list[int] = []
    nodes: list[dict] = []
    sim.start(_system_config=spec.get("system_config"))
    try:
        for i, argv in enumerate(spec["commands"]):
            with open(out / f"cmd{i}.log", "w") as log:
                proc = subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, timeout=TIMEOUT_S)
            codes.append(proc.returncode)
        import ray

        ray.init(address="auto", logging_level="ERROR", log_to_driver=False)
        nodes = [
            {"node_id": n["NodeID"], "alive": n["Alive"], "resources": n["Resources"]}
            for n in ray.nodes()
        ]
        ray.shutdown()
    finally:
        (out / "result.json").write_text(json.dumps({"codes": codes, "nodes": nodes}))
        sim.shutdown()
        time.sleep(1)
    return 0


def _init(spec_path: str) -> int:
    """As PID 1 of the namespace: run the simulation in a child and reap every orphan (Ray's
    processes are re-parented here when they die), so ``ray stop`` finds no zombies."""
    if os.getpid() != 1:  # never run `ray stop --force` outside a private PID namespace
        print("refusing to run outside `unshare --pid`", file=sys.stderr)
        return 3
    child = os.fork()
    if child == 0:
        os._exit(_main(spec_path))
    code = 1
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            return code
        if pid == child:
            code = os.waitstatus_to_exitcode(status)
            return code


if __name__ == "__main__":
    sys.exit(_init(sys.argv[1]))
