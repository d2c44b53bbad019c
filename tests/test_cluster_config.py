"""The cluster-launcher files validate offline against Ray's own schema and checks.

`ray up` runs ``prepare_config`` (merge the provider's defaults, normalise node types) and
then ``validate_config`` (Ray's JSON schema plus its own consistency checks). Both live in
the private module ``ray.autoscaler._private.util``; raw ``validate_config(cfg)`` without
``prepare_config`` fails with a misleading "Missing 'cluster_synced_files'". Private API:
re-check these tests when Ray's minor version moves (see TESTED_RAY_MINOR).
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
AWS = ROOT / "cluster.yaml"
ONPREM = ROOT / "cluster-onprem.yaml"
# The Ray minor version whose private validator these tests were written against.
TESTED_RAY_MINOR = "2.60"

ray = pytest.importorskip("ray")
jsonschema = pytest.importorskip("jsonschema")
from ray.autoscaler._private.util import prepare_config, validate_config  # noqa: E402


def load(path: Path) -> dict[str, Any]:
    with open(path) as f:
        return yaml.safe_load(f)


def check(cfg: dict[str, Any]) -> dict[str, Any]:
    """What `ray up` does before touching any cloud: fill defaults, then validate."""
    prepared = prepare_config(copy.deepcopy(cfg))
    validate_config(prepared)
    return prepared


def all_commands(cfg: dict[str, Any]) -> list[str]:
    keys = (
        "initialization_commands",
        "setup_commands",
        "head_setup_commands",
        "worker_setup_commands",
        "head_start_ray_commands",
        "worker_start_ray_commands",
    )
    return [c for k in keys for c in cfg.get(k, [])]


def test_ray_minor_is_the_validated_one() -> None:
    minor = ".".join(ray.__version__.split(".")[:2])
    assert minor == TESTED_RAY_MINOR, (
        f"Ray is {ray.__version__}; these tests use the private "
        "ray.autoscaler._private.util.prepare_config/validate_config checked against Ray "
        f"{TESTED_RAY_MINOR}: re-check them and the cluster files, then update TESTED_RAY_MINOR"
    )


def test_aws_config_is_valid_and_autoscales_gpu_workers() -> None:
    prepared = check(load(AWS))
    assert prepared["provider"]["type"] == "aws"
    types = prepared["available_node_types"]
    head = prepared["head_node_type"]
    assert head in types
    assert types[head]["resources"].get("GPU", 0) == 0
    gpu_types = {n: t for n, t in types.items() if n != head and t["resources"].get("GPU", 0) > 0}
    assert gpu_types, "no GPU worker node type"
    for name, t in gpu_types.items():
        assert t["min_workers"] == 0 and t["max_workers"] > 0, name  # scales from zero
        assert t["node_config"]["InstanceType"].startswith(("g", "p")), name
        assert t["node_config"]["ImageId"], name
    assert any(t["resources"]["GPU"] > 1 for t in gpu_types.values()), "no multi-GPU node type"
    assert prepared["max_workers"] >= max(t["max_workers"] for t in gpu_types.values())


def test_onprem_config_is_valid() -> None:
    raw = load(ONPREM)
    prepared = check(raw)
    assert prepared["provider"]["type"] == "local"
    assert raw["provider"]["head_ip"] and raw["provider"]["worker_ips"]
    (node_type,) = prepared["available_node_types"].values()
    assert node_type["max_workers"] == len(raw["provider"]["worker_ips"])


@pytest.mark.parametrize("path", [AWS, ONPREM], ids=["aws", "onprem"])
def test_unknown_top_level_key_is_rejected(path: Path) -> None:
    cfg = load(path)
    cfg["max_worker"] = 3  # typo of max_workers
    with pytest.raises(jsonschema.ValidationError, match="max_worker"):
        check(cfg)


def test_unknown_node_type_key_is_rejected() -> None:
    cfg = load(AWS)
    cfg["available_node_types"]["gpu_1x_a10g"]["max_worker"] = 3
    with pytest.raises(jsonschema.ValidationError, match="max_worker"):
        check(cfg)


def test_head_node_type_must_exist() -> None:
    cfg = load(AWS)
    cfg["head_node_type"] = "no_such_type"
    with pytest.raises(ValueError, match="head_node_type"):
        check(cfg)


def test_node_type_without_resources_is_rejected() -> None:
    cfg = load(AWS)
    del cfg["available_node_types"]["gpu_4x_a10g"]["resources"]
    with pytest.raises(jsonschema.ValidationError, match="resources"):
        check(cfg)


def test_onprem_without_head_ip_is_rejected() -> None:
    import click

    cfg = load(ONPREM)
    del cfg["provider"]["head_ip"]
    with pytest.raises(click.ClickException):
        check(cfg)


@pytest.mark.parametrize("path", [AWS, ONPREM], ids=["aws", "onprem"])
def test_nothing_listens_beyond_loopback(path: Path) -> None:
    text = path.read_text()
    assert "0.0.0.0" not in text
    prepared = check(load(path))  # after defaults: Ray's own start commands must not sneak in
    heads = [c for c in prepared["head_start_ray_commands"] if "ray start" in c]
    assert len(heads) == 1 and "--dashboard-host=127.0.0.1" in heads[0]
    starts = heads + [c for c in prepared["worker_start_ray_commands"] if "ray start" in c]
    assert len(starts) == 2
    for cmd in starts:
        assert "RAY_AUTH_MODE=token" in cmd, cmd
        assert "--include-dashboard=true" not in cmd and "--ray-client-server-port" not in cmd


@pytest.mark.parametrize("path", [AWS, ONPREM], ids=["aws", "onprem"])
def test_installs_the_project_into_one_venv(path: Path) -> None:
    prepared = check(load(path))
    cmds = all_commands(prepared)
    joined = "\n".join(cmds)
    assert "git clone" in joined and "pip install -q -e ~/lssat-search" in joined
    for cmd in cmds:  # no defaults' bare `pip install` into the system Python
        for m in re.finditer(r"(\S*)pip install", cmd):
            assert m.group(1).endswith("lssat-venv/bin/"), cmd
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        for cmd in prepared[key]:
            assert "~/lssat-venv/bin/ray " in cmd, cmd


SECRET_PATTERNS = [
    r"AKIA[0-9A-Z]{16}",  # AWS access key id
    r"(?i)aws_secret_access_key",
    r"(?i)secret[_-]?key\s*[:=]",
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----",
    r"RAY_AUTH_TOKEN\s*=",  # the token only travels as the file ~/.ray/auth_token
    r"(?i)password\s*[:=]",
]


@pytest.mark.parametrize("path", [AWS, ONPREM], ids=["aws", "onprem"])
def test_no_secrets_and_token_comes_from_home(path: Path) -> None:
    text = path.read_text()
    for pattern in SECRET_PATTERNS:
        assert not re.search(pattern, text), pattern
    assert load(path)["file_mounts"] == {"~/.ray/auth_token": "~/.ray/auth_token"}
