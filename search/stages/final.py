"""The held-out stage of a finished search (its command line and rules: :mod:`search.final`):
plan the runs (:func:`prepare`), run them as Tune trials (:func:`run_stage`), summarise them."""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lssat.errors import ConfigError, DataError
from search.execution.ray_init import RayOptions

SETTINGS_FILE = "final.json"
DEFAULT_TOP_K = 3
DEFAULT_SEEDS = 3
SEED_SALT = 0xF1A1  # final seeds: SeedSequence([search seed, SEED_SALT]), never a trial's seed


@dataclass
class Run:
    """One (configuration, seed) of the final stage."""

    run_id: str
    trial_id: str
    number: int
    rank: int
    seed: int
    selection_value: float
    config: dict[str, Any] = field(default_factory=dict)
    group: str | None = None  # its level of FinalPlan.per (the confirmation stage)


@dataclass(frozen=True)
class FinalRequest:
    """``search.final``'s flags, typed: ``experiment`` (RESULTS/TASK/NAME), ``top_k``
    configurations (None = the saved or the space's), the Pareto ``front``, or ``per`` (the
    best configuration of each level of that parameter: the confirmation stage), ``seeds`` each,
    extra ``eval_data`` sets (NAME=DIR), ``resume``, bootstrap ``n_resamples``, and how runs
    are placed (``max_concurrent``, ``max_failures``, ``ray``)."""

    experiment: str
    top_k: int | None = None
    seeds: int | None = None
    front: bool = False
    per: str | None = None
    eval_data: tuple[str, ...] = ()
    resume: bool = False
    n_resamples: int = 1000
    max_concurrent: int | None = None
    max_failures: int = 0
    ray: RayOptions = RayOptions()


@dataclass
class FinalPlan:
    """The stage resolved by :func:`prepare` (nothing written yet): the search's saved
    ``settings`` and ``space``, the data and held-out ``sets``, every planned run and the ones
    still ``todo``, and the previous session's ``saved`` final.json."""

    exp_dir: Path
    settings: dict[str, Any]
    space: Any
    task: str
    data: Path
    classes: list[Any]
    meta: dict[str, Any]
    sets: list[Any]
    runs: list[Run]
    todo: list[Run]
    top_k: int
    seeds: int
    note: str | None
    front: bool
    saved: dict[str, Any]
    per: str | None = None

    @property
    def mode(self) -> str:
        """How configurations were chosen: per | front | top_k (the ``final_mode`` column)."""
        return "per" if self.per else "front" if self.front else "top_k"


def final_seeds(search_seed: int, n: int) -> list[int]:
    """The ``n`` seeds of the final runs, derived from the search seed (same for every
    configuration, so configurations are compared seed by seed)."""
    state = np.random.SeedSequence([int(search_seed), SEED_SALT]).generate_state(n)
    return [int(s) % 2**31 for s in state]


def parse_eval_data(items: list[str] | None) -> dict[str, str]:
    """``NAME=PREPARED_DIR`` strings -> {name: dir}; one-sentence ConfigError when malformed."""
    from search.execution.heldout import check_name

    out: dict[str, str] = {}
    for item in items or []:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise ConfigError(f"--eval-data is {item!r}; write it as NAME=PREPARED_DIR")
        check_name(name)
        if name in out:
            raise ConfigError(f"--eval-data names {name!r} twice")
        out[name] = path
    return out


def select(trials: Any, mode: str, top_k: int) -> tuple[Any, str | None]:
    """The top-k COMPLETE trials by ``final_value`` (what Optuna was told) and a note when
    trials were scored on several validation sets (``search.results.selection``)."""
    from search.results.selection import select as rule

    return rule(trials, mode, top_k)


def _settings(exp_dir: Path) -> dict[str, Any]:
    from search.optimize.study import load_settings

    if not exp_dir.is_dir():
        raise DataError(f"experiment folder {exp_dir} does not exist")
    settings = load_settings(exp_dir)
    if settings is None or "task" not in settings:
        raise DataError(f"{exp_dir} is not an experiment folder of search.run (no search.json)")
    return settings


def _data_path(settings: dict[str, Any]) -> Path:
    from lssat.data import resolve_data

    data = Path(settings["data"])
    if not data.is_dir():
        again = settings.get("demo_data") or (None if settings.get("demo") else data)
        data = resolve_data(again, settings["task"])  # a demo (demo:swap, ...) is rebuilt
    return data.resolve()


def prepare(req: FinalRequest) -> FinalPlan:
    """Check everything and plan the runs; writes nothing (bad input is a one-sentence error)."""
    from lssat.config import TrialConfig
    from lssat.data.shards import META_FILE, read_json
    from search import results
    from search.execution.heldout import EvalSet, open_eval_set
    from search.optimize.space import load_space

    exp_dir = Path(req.experiment).expanduser().resolve()
    settings = _settings(exp_dir)
    saved_path = exp_dir / results.FINAL_DIR / SETTINGS_FILE
    saved = None
    if saved_path.is_file():
        try:
            saved = json.loads(saved_path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DataError(f"final stage settings {saved_path} cannot be read ({exc})") from None
    if saved is not None and not req.resume:
        raise ConfigError(
            f"the final stage already ran in {exp_dir / results.FINAL_DIR}; add --resume to "
            "continue or extend it"
        )
    space = load_space(exp_dir / "space.yaml", settings["task"])
    per = req.per or (None if req.front or req.top_k is not None else (saved or {}).get("per"))
    if per and (req.front or req.top_k is not None):
        flag = "--front" if req.front else "--top-k"
        raise ConfigError(f"--per and {flag} exclude each other: --per retrains the best "
                          "configuration of each level")  # fmt: skip
    if per:
        names = [p.name for p in space.params if p.kind == "categorical"]
        if per not in names:
            raise ConfigError(f"--per names {per!r}, which is not a categorical parameter of "
                              f"the search; allowed: {', '.join(names) or 'none'}")  # fmt: skip
    front = not per and bool(req.front or (saved or {}).get("front"))
    if front and req.top_k is not None:
        raise ConfigError("--front and --top-k exclude each other: the front is its own set")
    if front and not space.multi_objective:
        raise ConfigError(
            f"--front needs a multi-objective search, but {exp_dir} optimised one metric "
            f"({space.metric}); use --top-k"
        )
    top_k = req.top_k or (saved or {}).get("top_k") or space.final.get("top_k", DEFAULT_TOP_K)
    n_seeds = req.seeds or (saved or {}).get("seeds") or space.final.get("seeds", DEFAULT_SEEDS)
    for flag, value in (("--top-k", top_k), ("--seeds", n_seeds)):
        if value < 1:
            raise ConfigError(f"{flag} is {value}; it must be at least 1")
    if req.n_resamples < 1:
        raise ConfigError(f"--n-resamples is {req.n_resamples}; it must be at least 1")
    task = settings["task"]
    data = _data_path(settings)
    meta = read_json(data / META_FILE, "dataset meta file")
    classes = list(meta.get("classes") or [])
    extra = parse_eval_data(list(req.eval_data))
    if saved is not None:
        before = {k: v["path"] for k, v in saved.get("eval_data", {}).items()}
        if req.eval_data and {k: str(Path(v).resolve()) for k, v in extra.items()} != before:
            raise ConfigError(
                f"--eval-data differs from the sets this final stage started with ({before}); "
                "resume without --eval-data or use another experiment"
            )
        extra = before
    if not meta.get("counts", {}).get("test", {}).get("rows", 0):
        raise DataError(
            f"dataset {data} has no test rows; the final stage needs a held-out test split"
        )
    sets = [EvalSet("test", str(data), "test")]
    sets += [open_eval_set(name, path, task, classes) for name, path in extra.items()]
    trials = results.read_trials(exp_dir)
    if trials.empty or not (trials["status"] == "COMPLETE").any():
        raise DataError(f"experiment {exp_dir} has no COMPLETE trial to retrain")
    if front:  # every COMPLETE trial on the Pareto front, best first objective first
        from search.results.pareto import front as pareto_front

        top, note = pareto_front(trials)[1], None  # type: ignore[index]
        top_k = len(top)
    elif per:  # the confirmation stage: each level's best, by the one selection rule
        from search.results.selection import select_per

        top, note = select_per(trials, settings.get("mode", space.mode), per)
        top_k = len(top)
    else:
        top, note = select(trials, settings.get("mode", space.mode), top_k)
    seeds = final_seeds(int(settings.get("seed", 0)), n_seeds)
    runs = []
    for rank, (_, row) in enumerate(top.iterrows(), start=1):
        params = json.loads(row["params"]) if isinstance(row.get("params"), str) else {}
        for seed in seeds:
            config = TrialConfig.from_dict(space.config(params, seed=seed)).to_dict()
            runs.append(Run(results.final_stem(row["trial_id"], seed), str(row["trial_id"]),
                            int(row["number"]), rank, seed, float(row["final_value"]),
                            config, str(row["group"]) if per else None))  # fmt: skip
    todo = [r for r in runs if not (exp_dir / results.FINAL_DIR / f"{r.run_id}.parquet").is_file()]
    return FinalPlan(
        exp_dir=exp_dir, settings=settings, space=space, task=task, data=data,
        classes=classes, meta=meta, sets=sets, runs=runs, todo=todo,
        top_k=top_k, seeds=n_seeds, note=note, front=front,
        saved=saved or {"sessions": 0}, per=per,
    )  # fmt: skip


def _run_meta(
    plan: FinalPlan, run: Run, index: int, req: FinalRequest, hook: dict[str, Any]
) -> dict[str, Any]:
    """What ``search.execution.trainable.train_trial`` reads for one final run (``hook``: the
    test-only ``LSSAT_TRIAL_FN`` entries, see :func:`search.execution.resources.trial_fn_meta`)."""
    from lssat.descriptors import get_backend
    from search import results
    from search.execution.final_recorder import last_checkpoint
    from search.execution.trainable import threads_for

    exp_dir, settings = plan.exp_dir, plan.settings
    ckpt, epoch = last_checkpoint(exp_dir, run.run_id)
    if ckpt is not None and epoch >= int(run.config["epochs"]):
        ckpt, epoch = None, 0  # its last epoch ran, its row was never written: train again
    cpus = float(settings.get("cpus_per_trial", 1.0))
    return {
        "data": str(plan.data),
        "threads": threads_for(cpus),
        "cpus": cpus,
        "gpus": float(settings.get("gpus_per_trial", 0.0)),
        "workers": int(settings.get("workers_per_trial", 1)),
        "max_failures": req.max_failures,
        "train_dir": str(exp_dir / results.FINAL_DIR / "ray" / "train"),
        "descriptor_backend": get_backend(),
        "weights_dir": settings.get("weights_dir"),  # pretrained backbones, as the search had
        "number": 1_000_000 + index,  # names a multi-worker run's Ray Train folder
        "trial_id": run.run_id,
        "run_id": run.run_id,
        "rank": run.rank,
        "seed": run.seed,
        "source_trial_id": run.trial_id,
        "source_number": run.number,
        "selection_value": run.selection_value,
        "final_mode": plan.mode,
        "group_param": plan.per,
        "group": run.group,
        "params": {},
        "tb_dir": None,
        "resume_from": ckpt,
        "resume_epoch": epoch,
        "final": {
            "sets": [vars(s) for s in plan.sets],
            "describe": {s.name: s.describe() for s in plan.sets},
            "weights": str(exp_dir / results.FINAL_DIR / f"{run.run_id}.safetensors"),
            "items": str(results.items_path(exp_dir, run.run_id)),
            "seed": run.seed,
            "n_resamples": req.n_resamples,
            "info": {
                "task": plan.task, "classes": plan.classes, "experiment": settings["name"],
                "trial_id": run.trial_id, "seed": run.seed, "run_id": run.run_id,
                "label_kind": plan.meta.get("label_kind"), "data": str(plan.data),
            },
        },
        **hook,
    }  # fmt: skip


def tag_done(plan: FinalPlan) -> int:
    """Mark rows an earlier stage wrote for a planned run (the same configuration and seed,
    e.g. the top-1 run of a ``--top-k`` stage) as part of this ``--per`` stage: its mode,
    parameter and level. Returns how many rows were updated."""
    from search import results

    if not plan.per:
        return 0
    want = {r.run_id: r for r in plan.runs if r not in plan.todo}
    final_dir = plan.exp_dir / results.FINAL_DIR
    changed = 0
    for run_id, run in want.items():
        path = final_dir / f"{run_id}.parquet"
        row = results.read_final(path).iloc[0].to_dict()
        if row.get("final_mode") == "per" and row.get("group") == run.group:
            continue
        row.update(final_mode="per", group_param=plan.per, group=run.group, rank=run.rank)
        row.pop("schema_version", None)
        results.write_final(plan.exp_dir, {k: v for k, v in row.items() if not _nan(v)})
        changed += 1
    return changed


def _nan(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def run_stage(ray: Any, plan: FinalPlan, req: FinalRequest) -> None:
    """Run the planned runs that have no row yet as one Tune experiment on ``ray``."""
    from ray import tune

    from search import results
    from search.execution.final_recorder import FinalRecorder
    from search.execution.heldout import CI_LEVEL, CI_METHOD
    from search.execution.resources import TrialResources, cluster, concurrency, trial_fn_meta
    from search.execution.trainable import train_final_run
    from search.optimize.searcher import CONFIG_KEY, META_KEY
    from search.results.provenance import git_commit, versions

    exp_dir, settings = plan.exp_dir, plan.settings
    final_dir = exp_dir / results.FINAL_DIR
    final_dir.mkdir(parents=True, exist_ok=True)
    session = int(plan.saved.get("sessions", 0))
    saved = {
        "top_k": plan.top_k, "seeds": plan.seeds, "sessions": session + 1,
        "front": bool(plan.front), "per": plan.per,
        "eval_data": {s.name: s.describe() for s in plan.sets if s.name != "test"},
        "runs": [r.run_id for r in plan.runs],
    }  # fmt: skip
    tmp = final_dir / f".{SETTINGS_FILE}.tmp"
    tmp.write_text(json.dumps(saved, indent=1, sort_keys=True))
    os.replace(tmp, final_dir / SETTINGS_FILE)
    index = {r.run_id: i for i, r in enumerate(plan.runs)}
    hook = trial_fn_meta()
    runs = [
        {CONFIG_KEY: r.config, META_KEY: _run_meta(plan, r, index[r.run_id], req, hook)}
        for r in plan.todo
    ]
    res = TrialResources(
        cpus=float(settings.get("cpus_per_trial", 1.0)),
        gpus=float(settings.get("gpus_per_trial", 0.0)),
        workers=int(settings.get("workers_per_trial", 1)),
        max_concurrent=req.max_concurrent,
        max_failures=req.max_failures,
    )
    shape = cluster(ray, req.ray.address)
    concurrent = concurrency(shape, res, req.ray.local)
    which = "the Pareto front's " if plan.front else ""
    which = f"the best per {plan.per}: " if plan.per else which
    print(f"final stage: {len(runs)} runs ({which}{plan.top_k} configurations x {plan.seeds} "
          f"seeds, {len(plan.runs) - len(runs)} already done), {concurrent} at a time, "
          f"{len(plan.sets)} held-out sets: {', '.join(s.name for s in plan.sets)}",
          flush=True)  # fmt: skip
    recorder = FinalRecorder(
        exp_dir,
        {"task": plan.task, "experiment": settings["name"], "metric": plan.space.metric,
         "mode": settings.get("mode", plan.space.mode), "ci_level": CI_LEVEL,
         "ci_method": CI_METHOD, "git_commit": git_commit(), "versions": versions()},
        total=len(runs),
    )  # fmt: skip
    tuner = tune.Tuner(
        tune.with_resources(train_final_run, res.tune_resources()),
        param_space={"run": tune.grid_search(runs)},
        tune_config=tune.TuneConfig(
            num_samples=1,
            max_concurrent_trials=concurrent,
            reuse_actors=True,
            trial_name_creator=lambda t: t.config["run"][META_KEY]["run_id"],
            trial_dirname_creator=lambda t: t.config["run"][META_KEY]["run_id"],
        ),
        run_config=tune.RunConfig(
            name=f"session-{session}",
            storage_path=str(final_dir / "ray"),
            callbacks=[recorder],
            verbose=2 if req.ray.verbose else 0,
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            failure_config=tune.FailureConfig(max_failures=req.max_failures),
        ),
    )
    tuner.fit()


def summary_lines(exp_dir: str | Path) -> list[str]:
    """Test mean ± sd over seeds per configuration (empty when no final stage ran)."""
    from search import results

    final_dir = Path(exp_dir) / results.FINAL_DIR
    rows = results.read_final(final_dir) if final_dir.is_dir() else None
    if rows is None or rows.empty:
        return []
    metric = str(rows["metric"].iloc[0])
    base = metric[len("val_") :]
    names = sorted({k for v in rows["eval_sets"] for k in json.loads(v)} - {"test"})
    lines = [f"final stage (held-out; {metric} only selected, test_{base} is what to report):"]
    done = rows[rows["status"] == "COMPLETE"]
    for (rank, tid), g in done.groupby(["rank", "trial_id"], sort=True):
        group = g["group"].dropna() if "group" in g else g["rank"].iloc[0:0]
        label = f", {g['group_param'].dropna().iloc[0]} {group.iloc[0]}" if len(group) else ""
        parts = [f"  #{int(g['number'].iloc[0])} ({tid}, rank {int(rank)}{label}): selection "
                 f"{metric} {g['selection_value'].iloc[0]:.4f};"]  # fmt: skip
        for name in ["test", *names]:
            col = f"{name}_{base}"
            if col in g:
                parts.append(f"{col} {mean_sd(g[col])} (n={g[col].notna().sum()} seeds)")
        lines.append(" ".join(parts))
    failed = int((rows["status"] == "FAIL").sum())
    if failed:
        lines.append(f"  {failed} final runs FAILED (errors in {Path(exp_dir) / 'final'})")
    return lines


def mean_sd(values: Any) -> str:
    """``0.8123 ± 0.0101`` (sample sd over seeds; ``± n/a`` for one value)."""
    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=float)
    if not len(v):
        return "n/a"
    sd = f"{v.std(ddof=1):.4f}" if len(v) > 1 else "n/a"
    return f"{v.mean():.4f} ± {sd}"


def execute(ray: Any, plan: FinalPlan, req: FinalRequest) -> int:
    """Run the planned stage on a started ``ray`` and print its summary; the exit code."""
    if plan.note:
        print(f"note: {plan.note}", flush=True)
    tag_done(plan)
    if plan.todo:
        run_stage(ray, plan, req)
    for line in summary_lines(plan.exp_dir):
        print(line, flush=True)
    from search import results

    rows = results.read_final(plan.exp_dir / results.FINAL_DIR)
    missing = len(plan.runs) - len(rows[rows["run_id"].isin([r.run_id for r in plan.runs])])
    if missing:
        print(f"note: {missing} final runs did not finish; run the same command with --resume",
              flush=True)  # fmt: skip
        return 130
    return 1 if (rows["status"] == "FAIL").all() else 0


def run_final(req: FinalRequest) -> int:
    """The final stage of one experiment on its own Ray; returns the exit code."""
    from search.execution.ray_init import ray_connected, ray_init

    if req.top_k is not None and req.top_k < 1:
        raise ConfigError(f"--top-k is {req.top_k}; it must be at least 1")
    if req.seeds is not None and req.seeds < 1:
        raise ConfigError(f"--seeds is {req.seeds}; it must be at least 1")
    from search.results.lock import hold_experiment

    # one driver per experiment folder: not while its search (or another final) still runs
    with hold_experiment(req.experiment, "search.final", create=False):
        plan = prepare(req)
        ray_was_up = ray_connected()  # a Ray this process already runs is left running
        ray = ray_init(req.ray) if plan.todo else None
        try:
            t0 = time.time()
            code = execute(ray, plan, req)
            print(f"final stage done in {time.time() - t0:.0f} s", flush=True)
            return code
        finally:
            if ray is not None and not ray_was_up:
                ray.shutdown()
