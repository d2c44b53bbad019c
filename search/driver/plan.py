"""One typed plan for a search: what the user asked (:class:`Request`, from the command line)
resolved once into everything the session needs (:class:`Plan`): the space, the data, the
experiment folder, budget and seed, storage, resources, ASHA, warm start, weights and the
final stage. Resolving writes nothing; bad input is one ``ConfigError``/``DataError``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, NoReturn

from lssat.errors import ConfigError, LssatError
from search.execution.ray_init import RayOptions
from search.execution.resources import TrialResources


@dataclass(frozen=True)
class Request:
    """``python -m search.run``'s flags, checked and typed (None = not given)."""

    task: str
    space: str | None = None
    data: str | None = None
    trials: int | None = None
    epochs: int | None = None
    name: str | None = None
    results: str = "results"
    storage: str | None = field(default=None, repr=False)  # may hold a password
    resume: bool = False
    seed: int = 0
    resources: TrialResources = TrialResources()
    ray: RayOptions = RayOptions()
    grace_period: int | None = None
    reduction_factor: int | None = None
    wait_warning: float = 60.0
    keep_checkpoints: bool = False
    allow_test_selection: bool = False
    final_top_k: int | None = None
    final_front: bool = False
    final_seeds: int | None = None
    final_per: str | None = None
    weights_dir: str | None = None
    warm_start: str | None = None
    warm_start_k: int | None = None
    dry_run: bool = False
    epoch_minutes: float | None = None
    pretrained: bool = True  # False: --no-pretrained (every trial trains from scratch)


class FinalWanted(NamedTuple):
    """The final stage to run after the search: ``top_k`` configurations (0 = the Pareto
    front) x ``seeds``, or with ``per`` the best configuration of each level of that
    parameter (the confirmation stage)."""

    top_k: int
    seeds: int
    per: str | None = None


@dataclass(frozen=True)
class Plan:
    """Everything resolved for one session of one search (``--dry-run`` prints it)."""

    request: Request
    name: str
    exp_dir: Path
    space_path: Path
    space: Any  # search.optimize.space.SearchSpace (resolved: --epochs, --trials applied)
    resume: bool
    data: Path
    demo_data: str | None  # "demo:swap": rebuilt by name on each node
    demo: bool
    budget: int
    seed: int
    storage: str | None = field(repr=False)  # may hold a password; see storage_label()
    sessions: tuple[dict[str, Any], ...]
    saved_warm: dict[str, Any] | None  # search.json's warm-start record (on --resume)
    allow_test_selection: bool
    warm: Any  # search.optimize.warm.WarmPlan | None
    weights_dir: Path | None
    weights: dict[str, Any]  # backbone -> where its pretrained weights come from
    grace_period: int
    reduction_factor: int
    final: FinalWanted | None
    hub_offline: bool = False  # every pretrained backbone is cached here: trials skip the hub

    @property
    def task(self) -> str:
        return self.request.task

    @property
    def resources(self) -> TrialResources:
        return self.request.resources

    @property
    def ray(self) -> RayOptions:
        return self.request.ray

    def describe(self) -> list[str]:
        """The plan in lines (``--dry-run``); the storage URL without its password."""
        from search.results.redact import redact_url

        r = self.resources
        warm = (
            f"from {self.warm.source} ({len(self.warm.enqueue)} enqueued, "
            f"{len(self.warm.prior)} prior observations)"
            if self.warm
            else "none"
        )
        final = "none"
        if self.final is not None:
            which = "the Pareto front" if self.final.top_k == 0 else f"top {self.final.top_k}"
            which = f"the best per {self.final.per}" if self.final.per else which
            final = f"{which} x {self.final.seeds} seeds"
        return [
            f"plan: {self.task}/{self.name} in {self.exp_dir} "
            f"({'resume' if self.resume else 'new search'})",
            f"  space {self.space_path}; data {self.data}"
            + (f" ({self.demo_data})" if self.demo_data else ""),
            f"  budget {self.budget} trials x {self.space.epochs} epochs; seed {self.seed}; "
            f"storage {redact_url(self.storage) or 'journal file in the experiment folder'}",
            f"  per trial {r.cpus:g} CPU + {r.gpus:g} GPU x {r.workers} worker(s); "
            f"max concurrent {r.max_concurrent or 'what the cluster holds'}; "
            f"max failures {r.max_failures}; Ray {self.ray.address or 'local (127.0.0.1)'}",
            "  early stopping: "
            + (
                f"ASHA grace {self.grace_period}, reduction factor {self.reduction_factor}"
                if self.space.early_stopping
                else "none"
            )
            + f"; warm start: {warm}; final stage: {final}"
            + (f"; equal trials per {self.space.balance}" if self.space.balance else ""),
        ]


def _fail(message: str) -> NoReturn:
    raise ConfigError(message)


def space_path(req: Request) -> Path:
    from search.optimize.space import default_space_path

    return Path(req.space) if req.space else default_space_path(req.task)


def resolve(req: Request) -> Plan:
    """Resolve the space, the data and the experiment folder (fresh start or resume), the
    warm start, the weights table and the final stage; writes nothing."""
    from lssat.data import resolve_data
    from lssat.weights import ENV as WEIGHTS_ENV
    from search import results
    from search.execution.asha import asha_settings
    from search.optimize.pretrained import preflight, pretrained_backbones, weights_table
    from search.optimize.space import load_space
    from search.optimize.study import STUDY_FILE, check_resumable, load_settings

    path = space_path(req)
    name = req.name or path.stem
    exp_dir = Path(req.results).expanduser().resolve() / req.task / name
    settings = load_settings(exp_dir)
    exists = (
        settings is not None
        or (exp_dir / STUDY_FILE).exists()
        or any((exp_dir / results.TRIALS_DIR).glob("*.parquet"))
    )
    resume = bool(req.resume and exists)
    if exists and not req.resume:
        _fail(
            f"experiment folder {exp_dir} already holds a search; add --resume to continue "
            "it or pick another --name"
        )
    if req.resume and not exists:
        print(f"note: nothing to resume in {exp_dir}; starting a new search", flush=True)
    if resume and settings is None:
        _fail(f"experiment folder {exp_dir} has no search.json; it cannot be resumed")
    if resume:
        check_resumable(exp_dir, settings)

    saved: dict[str, Any] = settings if resume and settings is not None else {}
    if resume:
        space, data = _resumed_space_and_data(req, exp_dir, path, saved)
        budget = req.trials or int(saved["trials"])
        seed = int(saved["seed"])
        storage = _resume_storage(req, exp_dir, saved.get("storage"))
        sessions = tuple(saved.get("sessions", []))
    else:
        space = load_space(path, req.task)
        if req.epochs is not None:
            space.fixed["epochs"] = req.epochs
            from search.optimize.space import check_space

            check_space(space)
        if req.trials is not None:
            space.trials = req.trials
        if not req.pretrained:
            from_scratch(space)
        data = resolve_data(req.data, req.task).resolve()
        budget, seed, storage, sessions = space.trials, req.seed, req.storage, ()
    from search.optimize.objectives import check_device

    check_device(space, req.resources.gpus, str(path))
    if req.final_front:
        if req.final_top_k is not None:
            _fail("--final-front and --final-top-k exclude each other")
        if not space.multi_objective:
            _fail(f"--final-front needs a multi-objective space, but {path} has one metric")
    allow = bool(req.allow_test_selection or saved.get("allow_test_selection"))
    final = final_wanted(req, space)
    check_protocol(data, allow, final is not None)
    warm = _warm_plan(req, space, budget, saved if resume else None)
    if resume:
        demo_data = saved.get("demo_data")
        demo = bool(saved.get("demo"))
    else:
        demo_data = req.data if str(req.data).startswith("demo:") else None
        demo = demo_data is not None or req.data is None
    given_weights = req.weights_dir or os.environ.get(WEIGHTS_ENV) or (
        saved.get("weights_dir") if resume else None
    )
    if resume and not req.pretrained and pretrained_backbones(space):
        _fail(
            f"--no-pretrained: this search loads pretrained weights ({exp_dir / 'space.yaml'}); "
            "it cannot change on --resume"
        )
    weights_dir, weights = weights_table(space, given_weights, str(path))
    weights, hub_offline = preflight(weights, weights_dir, str(path))  # before any trial
    grace, rf = asha_settings(space, req.grace_period, req.reduction_factor)
    return Plan(
        request=req,
        name=name,
        exp_dir=exp_dir,
        space_path=path,
        space=space,
        resume=resume,
        data=data,
        demo_data=demo_data,
        demo=demo,
        budget=budget,
        seed=seed,
        storage=storage,
        sessions=sessions,
        saved_warm=saved.get("warm_start") if resume else None,
        allow_test_selection=allow,
        warm=warm,
        weights_dir=weights_dir,
        weights=dict(weights),
        grace_period=grace,
        reduction_factor=rf,
        final=final,
        hub_offline=hub_offline and req.ray.address is None,
    )


def from_scratch(space: Any) -> None:
    """``--no-pretrained``: ``pretrained: false`` fixed, no longer searched or enqueued."""
    from search.optimize.space import check_space

    space.fixed["pretrained"] = False
    space.params = [p for p in space.params if p.name != "pretrained"]
    for entry in space.enqueue:
        entry.pop("pretrained", None)
    check_space(space)


def _resumed_space_and_data(
    req: Request, exp_dir: Path, path: Path, saved: dict[str, Any]
) -> tuple[Any, Path]:
    """The saved space and data of a resumed search; a changed --space/--epochs/--data is
    refused in one sentence."""
    from lssat.data import resolve_data
    from search.optimize.space import load_space

    saved_space = exp_dir / "space.yaml"
    space = load_space(saved_space, req.task)
    if req.space:
        given = load_space(path, req.task)
        given.fixed["epochs"] = space.epochs  # --epochs overrides are compared below
        ignore = {"trials": 0, "final": None}  # the budget and final stage may change
        if given.to_dict() | ignore != space.to_dict() | ignore:
            _fail(
                f"--space {path} differs from the space this search started with "
                f"({saved_space}); resume without --space or pick another --name"
            )
    if req.epochs is not None and req.epochs != space.epochs:
        _fail(
            f"--epochs is {req.epochs}, but this search runs {space.epochs} epochs per "
            "trial; it cannot change on --resume"
        )
    if req.data is not None and str(resolve_data(req.data, req.task).resolve()) != saved["data"]:
        _fail(
            f"--data is {req.data}, but this search trains on {saved['data']}; it "
            "cannot change on --resume"
        )
    data = Path(saved["data"])
    if not data.is_dir():
        again = saved.get("demo_data") or (None if saved.get("demo") else data)
        data = resolve_data(again, req.task).resolve()
    return space, data


def _warm_plan(req: Request, space: Any, budget: int, settings: dict[str, Any] | None) -> Any:
    """The warm start (:mod:`search.optimize.warm`) of a new search, or the prior of a
    resumed one (nothing is enqueued again on --resume); None without one."""
    from search.optimize.warm import check_k, plan, read_source

    given = req.warm_start
    if settings is not None:  # resume: the saved source, if any, only as TPE's prior
        saved = (settings.get("warm_start") or {}).get("from")
        if given is not None and (saved is None or Path(given).resolve() != Path(saved)):
            _fail(
                f"--warm-start is {given}, but this search started "
                + (f"from {saved}" if saved else "without one")
                + "; it cannot change on --resume"
            )
        if saved is None:
            return None
        try:
            warm = plan(space, read_source(saved), 0)
        except LssatError as exc:
            print(f"note: no TPE prior on this resume: {exc}", flush=True)
            return None
        warm.enqueue, warm.skipped = [], []
        return warm
    if given is None:
        return None
    if space.sampler_name == "grid":
        _fail(
            f"--warm-start cannot be combined with sampler grid in {space.path} (the grid "
            "trains every configuration once)"
        )
    k = check_k(req.warm_start_k, True)
    room = max(0, budget - len(space.enqueue))
    warm = plan(space, read_source(given), min(k, room))
    for line in warm.describe(k):
        print(line, flush=True)
    if k > room:
        print(f"note: --warm-start-k {k} lowered to {room}: the trial budget is {budget}")
    if space.sampler_name != "tpe":
        print(f"note: sampler {space.sampler_name} uses no prior observations", flush=True)
    elif space.multi_objective:
        print("note: a multi-objective study runs the enqueued configurations but uses no "
              "prior observations (they carry one value each)", flush=True)  # fmt: skip
    return warm


def _resume_storage(req: Request, exp_dir: Path, saved: str | None) -> str | None:
    """The study URL of a resumed search: ``search.json`` keeps it without its password, so a
    password-protected one comes again from ``--storage`` or ``$LSSAT_STORAGE_URL``."""
    from search.optimize.study import check_storage_url, storage_label
    from search.results.redact import ENV_VAR, MASK, redact_url

    given = req.storage or (os.environ.get(ENV_VAR) or None if saved else None)
    if given is not None and saved is not None:
        check_storage_url(given)
    if given is None:
        if saved and MASK in saved:
            _fail(
                f"this search's study is at {saved}, whose password is not saved; give the "
                f"full URL again with --storage or the environment variable {ENV_VAR}"
            )
        return saved
    if saved is None or redact_url(given) != redact_url(saved):
        _fail(
            f"--storage differs from the study storage this search started with "
            f"({storage_label(exp_dir, saved)})"
        )
    return given


def check_protocol(data: Path, allow_test_selection: bool, final: bool) -> None:
    """Refuse a dataset that would select on its test split (unless allowed), and a final
    stage on a dataset without test rows, before anything is written."""
    from lssat.data.selection import val_is_test
    from lssat.data.shards import META_FILE, read_json

    meta = read_json(data / META_FILE, "dataset meta file")
    if val_is_test(meta) and not allow_test_selection:
        _fail(
            f"dataset {data} validates on its test split (it has no val rows), so the search "
            "would select on the numbers it reports; prepare it with a val split or pass "
            "--allow-test-selection"
        )
    if final and not meta.get("counts", {}).get("test", {}).get("rows", 0):
        _fail(f"dataset {data} has no test rows, so the final stage has nothing to test on")


def final_wanted(req: Request, space: Any) -> FinalWanted | None:
    """The final stage to run after the search, or None; top_k 0 = the Pareto front
    (``--final-front``)."""
    seeds = int(req.final_seeds or space.final.get("seeds", 3))
    if req.final_per:
        if req.final_front or req.final_top_k is not None:
            flag = "--final-front" if req.final_front else "--final-top-k"
            _fail(f"--final-per and {flag} exclude each other")
        names = [p.name for p in space.params if p.kind == "categorical"]
        if req.final_per not in names:
            _fail(f"--final-per names {req.final_per!r}, which is not a categorical parameter "
                  f"of {space.path}; allowed: {', '.join(names) or 'none'}")  # fmt: skip
        return FinalWanted(0, seeds, req.final_per)
    if req.final_front:
        return FinalWanted(0, seeds)
    top_k = req.final_top_k or space.final.get("top_k")
    if not top_k:
        return None
    return FinalWanted(int(top_k), int(req.final_seeds or space.final.get("seeds", 3)))
