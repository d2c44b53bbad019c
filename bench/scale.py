"""How does the real search driver behave with many trials on many GPUs? (issue 16, item 5)

    python bench/scale.py --trials 1000 --gpus 64            # the goal run
    python bench/scale.py --trials 16 --gpus 4 --trial-seconds 10   # a quick check

Runs ``search.run`` itself (its Tune setup, the project's Optuna TPE searcher, Ray's ASHA, the
Recorder writing Parquet, the Optuna journal) against a simulated Ray cluster
(``ray.cluster_utils.Cluster``: a head for the driver plus several nodes of logical GPUs, one
trial per GPU). Only the trainable is replaced: it imports no torch and plays back a recorded
learning-curve table (``--table``, default ``bench/curves/sbi`` when it holds a complete grid,
else a small synthetic table, which the output says), sleeping each recorded epoch time scaled
so that the median trial lasts ``--trial-seconds`` (default 60; overhead figures depend on it,
so compare runs at the same value), and handing Tune a small checkpoint every
``checkpoint_every`` epochs and at the last, as ``lssat.train`` does (``--checkpoint-kib``;
0 = no checkpoints; ``search.replay.make_trainable`` plays both). An epoch time above 5x its
trial's median (the recording was paused) is replayed at that median.

Measured, from the Parquet the Recorder wrote plus timers around the driver's own calls:
- busy: busy GPU-seconds / (GPUs x makespan), busy = the epochs' own (sleep) time: a Tune
  function trainable's report blocks until the driver asks for the next result, so waiting on
  the driver is idle GPU time; makespan from the driver's start to the last report. It holds
  the cluster's start-up and the last wave's tail; ``busy_steady`` is the same over the window
  from the first wave's last start to the last trial's start, where every GPU had work waiting;
- driver overhead per trial: on each slot (node + GPU id), the previous trial's last report ->
  this trial's last report, minus this trial's epochs (its wait to start plus its waits on the
  driver after each report), in seconds and as a share of the mean trial (busy) time;
- TPE ask latency (the searcher's suggest) p50/p95 over asks 81-100 and the last 10 %;
- Parquet (epochs, now on the Recorder's writer thread, + trial rows) and journal (Optuna
  report/tell/attrs) write time per trial;
- driver memory (peak RSS), driver CPU seconds per trial and the load average: on a small
  machine most of the wall overhead is CPU contention with the simulated nodes' processes
  (compare driver CPU with wall overhead).
Each run appends one row to ``--out``/scale.csv; the trend over all rows is printed, then::

    scale: N trials on G GPUs: busy 0.XX, driver overhead X.X% of trial time, TPE ask p95 X ms
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import resource
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lssat.errors import ConfigError, DataError  # noqa: E402

DEFAULT_TABLE = ROOT / "bench" / "curves" / "sbi"
TRIAL_SECONDS = 60.0  # the floor for the median simulated trial


# ------------------------------------------------------------------------------ the table
def synthetic_table(out: Path, seed: int = 0) -> Path:
    """The curve grid (bench/curves/grid.yaml) with made-up curves and epoch times: a stand-in
    until a recorded table ships. Value = a per-config level reached over the epochs + noise."""
    import numpy as np
    import yaml

    from search.optimize.space import load_space
    from search.replay import write_table

    rng = np.random.default_rng(seed)
    grid = ROOT / "bench" / "curves" / "grid.yaml"
    raw = yaml.safe_load(grid.read_text())
    raw["task"] = "deepfake"
    raw["fixed"] = {**raw.get("fixed", {}), "epochs": 6}  # the deepfake demo's budget
    space = load_space(grid, "deepfake")
    epochs = raw["fixed"]["epochs"]
    curves = []
    for params in space.grid_points():
        level = 0.6 + 0.3 * rng.random()
        per_epoch = (30.0 if params["backbone"].startswith("vit") else 20.0) * rng.uniform(0.9, 1.1)
        values = [
            level - (level - 0.5) * 0.6 ** (e + 1) + rng.normal(0, 0.01)
            for e in range(epochs)
        ]
        curves.append((params, values, [per_epoch] * epochs))
    return write_table(out, raw, curves, experiment="synthetic")


def pick_table(arg: str | None, tmp: Path) -> tuple[Any, str]:
    """The replay table and a label saying where it came from."""
    from search.replay import load_table

    if arg:
        return load_table(arg), f"recorded table {arg}"
    if (DEFAULT_TABLE / "space.yaml").is_file():
        with contextlib.suppress(DataError):
            return load_table(DEFAULT_TABLE), f"recorded table {DEFAULT_TABLE}"
    table = load_table(synthetic_table(tmp / "synthetic"))
    return table, "SYNTHETIC table (no complete recorded table in bench/curves/sbi yet)"


def _shown(table: str | None) -> str:
    """The table's folder, relative to the repository when inside it (for scale.csv)."""
    path = Path(table or DEFAULT_TABLE).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


DEFAULT_SPACE = ROOT / "spaces" / "deepfake.yaml"


def search_space_file(table: Any, args: argparse.Namespace, path: Path) -> Path:
    """The search space TPE searches: ``--space`` (default ``spaces/deepfake.yaml``, its
    parameters, sampler and ASHA settings as a user's search has them) with the table's epochs
    and metric, no pretrained weights (nothing is trained) and ``--trials``; ``--space grid``
    searches the table's own grid values instead. A proposed configuration plays the table's
    curve of the same key, or one picked by a stable hash of its params."""
    import yaml

    from search.optimize.space import load_space

    if args.space == "grid":
        d = table.space.to_dict()
        src = load_space(ROOT / "spaces" / "demo.yaml")
        d["sampler"] = {k: v for k, v in src.sampler.items() if k != "name"}
        d["scheduler"] = {k: v for k, v in src.scheduler.items() if k != "name"}
    else:
        d = load_space(args.space or DEFAULT_SPACE).to_dict()
        d["task"], d["metric"], d["mode"] = table.task, table.metric, table.mode
        d.pop("objectives", None)
        d["params"] = {k: v for k, v in d["params"].items() if k != "pretrained"}
        d["fixed"] = {**d.get("fixed", {}), "epochs": table.epochs, "pretrained": False}
    d["trials"] = args.trials
    d.pop("enqueue", None)
    d.pop("final", None)
    path.write_text(yaml.safe_dump(d, sort_keys=False))
    return path


def fake_dataset(task: str, path: Path) -> Path:
    """A prepared-dataset folder the driver accepts (the replay trainable never reads it)."""
    from lssat.data.resolve import META_FILE

    path.mkdir(parents=True, exist_ok=True)
    (path / META_FILE).write_text(json.dumps({"task": task, "note": "bench/scale.py stand-in"}))
    return path


# --------------------------------------------------------------------------------- timers
class Timers:
    """Wall time of the driver's calls, grouped (ask, parquet, journal)."""

    def __init__(self) -> None:
        self.calls: dict[str, list[float]] = defaultdict(list)

    def wrap(self, owner: Any, name: str, group: str) -> None:
        fn = getattr(owner, name)

        def timed(*a: Any, **kw: Any) -> Any:
            t = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                self.calls[group].append(time.perf_counter() - t)

        setattr(owner, name, timed)


def instrument(timers: Timers, trainable: Any) -> None:
    """Time the searcher's asks, the Recorder's Parquet writes and the journal writes; swap the
    trial function search.run hands to Tune for the replay trainable."""
    from search import results
    from search.execution import trainable as tr
    from search.optimize import searcher, study

    timers.wrap(searcher.OptunaAskSearcher, "_ask", "ask")  # TPE itself (either thread)
    timers.wrap(searcher.OptunaAskSearcher, "suggest", "suggest")  # what a trial start waits
    close = searcher.OptunaAskSearcher.close

    def counted_close(self: Any) -> None:
        timers.calls["waited"].append(float(self.waited))
        close(self)

    searcher.OptunaAskSearcher.close = counted_close
    timers.wrap(results, "write_epochs", "parquet")
    timers.wrap(results, "write_trial", "parquet")
    for name in ("report", "tell", "set_attrs"):
        timers.wrap(study.StudyRef, name, "journal")
    tr.train_trial = trainable  # search.run's _tune imports it from here at call time


# ------------------------------------------------------------------------------ analysis
def pct(values: list[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(values, q)) if values else math.nan


def trial_spans(ep: Any) -> list[dict[str, Any]]:
    """One dict per trial from its epoch rows: its slot (node, GPU ids), its function's start,
    its first report and first epoch's sleep, its last report (the slot is freed) and its busy
    seconds: the sum of its epochs' sleeps. A Tune function trainable's report blocks until the
    driver asks for the next result, so the time between epochs spent waiting on the driver is
    not busy (a real GPU idles then)."""
    trials = []
    for _, g in ep.groupby("trial_id"):
        g = g.sort_values("epoch")
        first = g.iloc[0]
        start = float(first["replay_start"])
        end = float(g["replay_report"].max())
        slot = (str(first.get("node_id")), str(first.get("gpu_ids")))
        trials.append(
            {
                "slot": slot if slot[1] not in ("", "None", "nan") else None,
                "start": start,
                "first_report": float(first["replay_report"]),
                "first_sleep": float(first["replay_sleep_s"]),
                "end": end,
                "busy": float(g["replay_sleep_s"].sum()),  # the epochs' own (training) time
            }
        )
    trials.sort(key=lambda t: t["start"])
    return trials


def measure_spans(trials: list[dict[str, Any]], gpus: int, t0: float) -> dict[str, float]:
    """Busy fraction and per-trial driver overhead of ``trials`` (see :func:`trial_spans`).

    Overhead of a trial = its last report - its busy seconds - the end of the trial before it
    on the same slot (node + GPU id): the wait for its start plus its waits on the driver after
    each report; without slots, the k-th trial after the first wave is paired with the k-th
    trial to end. ``busy`` is the issue's figure (t0 = the driver's
    start, so it holds the cluster's start-up and the last wave's tail); ``busy_steady`` counts
    only the window from the first wave's last start to the last trial's start, where every
    GPU had work waiting, so what it misses is the driver's (and the machine's) doing."""
    ends = sorted(t["end"] for t in trials)
    makespan = max(ends) - t0
    busy = sum(t["busy"] for t in trials) / (gpus * makespan)
    overheads: list[float] = []
    if all(t["slot"] is not None for t in trials):
        last: dict[Any, float] = {}
        for t in trials:  # in start order
            if t["slot"] in last:
                overheads.append(max(0.0, t["end"] - t["busy"] - last[t["slot"]]))
            last[t["slot"]] = t["end"]
    else:
        for k, t in enumerate(trials[gpus:]):
            overheads.append(max(0.0, t["end"] - t["busy"] - ends[k]))
    first_wave = [t["start"] - t0 for t in trials[:gpus]]
    lo = max(first_wave) + t0 if first_wave else t0
    hi = trials[-1]["start"]
    steady = math.nan
    if hi - lo > 0 and len(trials) > gpus:
        # a trial's busy seconds spread evenly over its span (start -> last report)
        covered = sum(
            t["busy"] / max(t["end"] - t["start"], 1e-9)
            * max(0.0, min(t["end"], hi) - max(t["start"], lo))
            for t in trials
        )  # fmt: skip
        steady = covered / (gpus * (hi - lo))
    mean_trial = sum(t["busy"] for t in trials) / len(trials)
    mean_over = sum(overheads) / len(overheads) if overheads else math.nan
    return {
        "trials_run": len(trials),
        "makespan_s": makespan,
        "busy": busy,
        "busy_steady": steady,
        "steady_window_s": max(0.0, hi - lo),
        "overhead_s": mean_over,
        "overhead_p50_s": pct(overheads, 50),
        "overhead_p95_s": pct(overheads, 95),
        "overhead_share": mean_over / mean_trial if overheads else math.nan,
        "first_wave_start_s": pct(first_wave, 50),
        "first_wave_last_start_s": max(first_wave) if first_wave else math.nan,
        "tail_s": max(ends) - hi,
        "mean_trial_s": mean_trial,
    }


def measure(exp_dir: Path, gpus: int, t0: float) -> dict[str, float]:
    """:func:`measure_spans` of the experiment's epoch rows (their replay timestamps)."""
    from search import results

    return measure_spans(trial_spans(results.read_epochs(exp_dir)), gpus, t0)


def despike(table: Any) -> int:
    """The replay's own spike repair (:func:`search.replay.table.despike`)."""
    from search.replay.table import despike as repair

    return repair(table)


def resume_reload(exp: Path, argv: list[str], mode: str) -> dict[str, float]:
    """What ``--resume`` costs on this experiment: the journal's size, the reload itself (a
    fresh journal replay + the reconcile with Parquet, in this process) and the whole command
    (``python -m search.run ARGV --resume`` in a fresh process; the budget is spent, so it
    reloads, reports and exits without starting Ray)."""
    import subprocess

    from search.optimize.study import STUDY_FILE, StudyRef, reconcile, study_name

    journal = exp / STUDY_FILE
    t = time.perf_counter()
    ref = StudyRef(str(exp), study_name(exp.parent.name, exp.name), mode)
    state = reconcile(ref)
    reload_s = time.perf_counter() - t
    cmd = [sys.executable, "-m", "search.run",
           *[a for i, a in enumerate(argv) if a != "--address" and argv[i - 1] != "--address"],
           "--resume", "--no-dashboard"]  # fmt: skip
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1800)
    cmd_s = time.perf_counter() - t
    if proc.returncode != 0:
        print(f"note: the --resume check exited {proc.returncode}: "
              f"{(proc.stderr or proc.stdout).strip().splitlines()[-1:]}", flush=True)  # fmt: skip
    return {
        "journal_mb": journal.stat().st_size / 2**20 if journal.is_file() else math.nan,
        "resume_reload_s": reload_s,
        "resume_cmd_s": cmd_s,
        "resume_finished": float(state.finished),
    }


# ------------------------------------------------------------------------------------ run
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--trials", type=int, required=True)
    p.add_argument("--gpus", type=int, required=True, help="logical GPUs (one trial each)")
    p.add_argument("--nodes", type=int, help="simulated nodes (default: GPUs / 8, at least 2)")
    p.add_argument("--table", help="recorded experiment folder to replay")
    p.add_argument("--space", help="the space TPE searches, with its sampler and ASHA settings "
                   "(default spaces/deepfake.yaml; 'grid': the table's own grid values)")
    p.add_argument("--trial-seconds", type=float, default=TRIAL_SECONDS,
                   help="median trial duration in real seconds (default 60)")  # fmt: skip
    p.add_argument("--checkpoint-kib", type=int, default=256,
                   help="size of the checkpoint each trial reports every checkpoint_every epochs "
                   "of the table's space and at its last, like lssat.train (default 256; 0: "
                   "none)")  # fmt: skip
    p.add_argument("--out", default=str(ROOT / "results" / "scale"), help="where scale.csv and "
                   "the search's experiment folders go (default results/scale)")  # fmt: skip
    return p


def check(args: argparse.Namespace) -> None:
    for flag, value, low in (("--trials", args.trials, 1), ("--gpus", args.gpus, 1)):
        if value < low:
            raise ConfigError(f"{flag} is {value}; it must be at least {low}")
    if args.nodes is not None and not 1 <= args.nodes <= args.gpus:
        raise ConfigError(f"--nodes is {args.nodes}; it must be between 1 and --gpus")
    if args.checkpoint_kib < 0:
        raise ConfigError(f"--checkpoint-kib is {args.checkpoint_kib}; it must be 0 or more")
    if not (math.isfinite(args.trial_seconds) and args.trial_seconds > 0):
        raise ConfigError(f"--trial-seconds is {args.trial_seconds}; it must be above 0")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        check(args)
        return run(args)
    except (ConfigError, DataError) as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2


def run(args: argparse.Namespace) -> int:
    import numpy as np

    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="scale-", dir=out))
    # Ray's socket paths must stay under 107 bytes: a short folder in the system's temp dir
    os.environ.setdefault("RAY_TMPDIR", tempfile.mkdtemp(prefix="ray-scale-"))
    Path(os.environ["RAY_TMPDIR"]).mkdir(parents=True, exist_ok=True)
    table, label = pick_table(args.table, tmp)
    spikes = table.spikes or despike(table)
    if spikes:
        print(f"table: {spikes} epoch time(s) above 5x their trial's median epoch (a paused "
              "recording) replayed at that median", flush=True)  # fmt: skip
    durations = [sum(c.times) for c in table.configs.values()]
    scale = args.trial_seconds / float(np.median(durations))
    print(f"table: {label}; {len(table.configs)} configs x {table.epochs} epochs", flush=True)
    print(
        f"time scale {scale:.4g}: the median trial lasts {args.trial_seconds:g} s"
        + ("" if args.trial_seconds >= TRIAL_SECONDS else
           f" (below the issue's {TRIAL_SECONDS:g} s: overhead shares are overstated)"),
        flush=True,
    )  # fmt: skip
    from search.replay import make_trainable

    timers = Timers()
    every = int(table.space.fixed.get("checkpoint_every", 1))
    instrument(timers, make_trainable(table, scale, every, args.checkpoint_kib))
    space_path = search_space_file(table, args, tmp / "space.yaml")
    data = fake_dataset(table.task, tmp / "data")
    nodes = args.nodes or max(2, min(8, args.gpus // 8))
    per = [args.gpus // nodes + (1 if i < args.gpus % nodes else 0) for i in range(nodes)]
    from ray.cluster_utils import Cluster

    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False}
    )
    name = f"t{args.trials}-g{args.gpus}-{int(time.time())}"
    from search.driver import cli as search_run

    try:
        for g in per:
            cluster.add_node(num_cpus=g, num_gpus=g)
        cluster.wait_for_nodes()
        print(f"cluster: {nodes} nodes, {per} logical GPUs", flush=True)
        argv = [
            "--task", table.task, "--space", str(space_path), "--data", str(data),
            "--results", str(out), "--name", name, "--address", cluster.address,
            "--cpus-per-trial", "1", "--gpus-per-trial", "1", "--trials", str(args.trials),
        ]  # fmt: skip
        cpu0, t0 = time.process_time(), time.time()
        code = search_run.run(search_run.build_parser().parse_args(argv))
        cpu = time.process_time() - cpu0
    finally:
        cluster.shutdown()
    exp = out / table.task / name
    m = measure(exp, args.gpus, t0)
    reload = resume_reload(exp, argv, table.mode)
    suggests = [s * 1e3 for s in timers.calls["suggest"]]
    waited = int(sum(timers.calls["waited"]))
    asks = [s * 1e3 for s in timers.calls["ask"]]
    n = len(asks)
    early = asks[80:100] if n >= 100 else asks[max(0, n - max(1, n // 10)) :]
    late = asks[n - max(1, n // 10) :]
    trials = max(1, m["trials_run"])
    row = {
        "trials": args.trials,
        "gpus": args.gpus,
        "nodes": nodes,
        "trial_seconds": args.trial_seconds,
        "checkpoint_kib": args.checkpoint_kib,
        "table": "synthetic" if label.startswith("SYNTHETIC") else _shown(args.table),
        **m,
        "ask_p50_ms_at_100": pct(early, 50),
        "ask_p95_ms_at_100": pct(early, 95),
        "ask_p50_ms_at_end": pct(late, 50),
        "ask_p95_ms_at_end": pct(late, 95),
        # TPE asked ahead: what a trial start itself waited in the searcher, and how often the
        # ask-ahead buffer was empty (the start waited on an ask)
        "suggest_p95_ms": pct(suggests, 95),
        "starts_waited_on_ask": waited,
        "space": str(args.space or "spaces/deepfake.yaml"),
        "parquet_ms_per_trial": 1e3 * sum(timers.calls["parquet"]) / trials,
        "journal_ms_per_trial": 1e3 * sum(timers.calls["journal"]) / trials,
        "driver_cpu_s_per_trial": cpu / trials,
        "driver_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        **reload,
        "load_avg_1m": os.getloadavg()[0],
        "exit_code": code,
    }
    import pandas as pd

    csv = out / "scale.csv"
    old = pd.read_csv(csv) if csv.is_file() else pd.DataFrame()
    trend = pd.concat([old, pd.DataFrame([row])], ignore_index=True)
    trend.to_csv(csv, index=False)
    cols = ["trials", "gpus", "trial_seconds", "busy", "busy_steady", "overhead_s",
            "overhead_share",
            "ask_p95_ms_at_100", "ask_p95_ms_at_end", "parquet_ms_per_trial",
            "journal_ms_per_trial", "driver_cpu_s_per_trial", "driver_peak_rss_mb", "journal_mb",
            "resume_reload_s"]  # fmt: skip
    cols = [c for c in cols if c in trend.columns]
    print(f"\ntrend ({csv}):")
    print(trend[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print(
        f"this run: {m['trials_run']} trials in {m['makespan_s']:.1f} s; mean trial "
        f"{m['mean_trial_s']:.1f} s; first wave starts {m['first_wave_start_s']:.1f} s "
        f"(median; last {m['first_wave_last_start_s']:.1f} s) after the driver; steady window "
        f"{m['steady_window_s']:.0f} s (busy {m['busy_steady']:.3f}), tail {m['tail_s']:.0f} s; "
        f"overhead p50 {m['overhead_p50_s']:.2f} s, p95 {m['overhead_p95_s']:.2f} s; ask p50 "
        f"{row['ask_p50_ms_at_end']:.1f} ms; "
        f"driver CPU {row['driver_cpu_s_per_trial']:.3f} s/trial (wall overhead "
        f"{m['overhead_s']:.3f} s/trial); driver peak RSS {row['driver_peak_rss_mb']:.0f} MB; "
        f"journal {reload['journal_mb']:.1f} MB, reloaded by --resume in "
        f"{reload['resume_reload_s']:.1f} s (the whole --resume command "
        f"{reload['resume_cmd_s']:.1f} s); load average {row['load_avg_1m']:.1f}",
        flush=True,
    )
    print(
        f"scale: {m['trials_run']} trials on {args.gpus} GPUs: busy {m['busy']:.2f}, driver "
        f"overhead {100 * m['overhead_share']:.1f}% of trial time, TPE ask p95 "
        f"{row['ask_p95_ms_at_end']:.0f} ms (asked ahead: a start waited p95 "
        f"{row['suggest_p95_ms']:.1f} ms in the searcher, {waited} of {len(suggests)} starts "
        "waited on an ask)",
        flush=True,
    )
    return 0 if code == 0 else code


if __name__ == "__main__":
    sys.exit(main())
