"""``python -m search.demo`` (``make demo``): the whole loop on the embedded demo tasks.

One small search per embedded task (``lssat.data.demo.DEMOS``: ``deepfake/sbi``,
``deepfake/swap``, ``classify/faces``, ``classify/digits``), all on one Ray instance started
once, then the confirmation stage of each task (``search.final --per backbone``: each
backbone's best configuration retrained with ``--final-seeds`` seeds and scored on test), then
``report/report.html`` and ``report/answers.json`` (``analysis.report``) and a few lines: the
report's path, each task's winner (the one selection rule) and the three answers. Run it
again and it resumes unfinished searches and reprints; finished work is never redone.

Exit codes as ``search.run``: 0 done, 1 a search failed, 2 bad input, 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import logging
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from lssat.errors import ConfigError, LssatError
from search.cli import Parser, run_cli

SPACES = Path(__file__).resolve().parent.parent / "spaces"


@dataclass(frozen=True)
class DemoTask:
    """One embedded task: the demo dataset, its task and the search space file."""

    demo: str  # name in lssat.data.demo.DEMOS (also the experiment name)
    task: str
    space: str  # file name under spaces/

    @property
    def key(self) -> str:
        return f"{self.task}/{self.demo}"


DEMO_TASKS = (
    DemoTask("sbi", "deepfake", "demo_deepfake.yaml"),
    DemoTask("swap", "deepfake", "demo_deepfake.yaml"),
    DemoTask("faces", "classify", "demo_faces.yaml"),
    DemoTask("digits", "classify", "demo_digits.yaml"),
)


@dataclass(frozen=True)
class DemoOptions:
    """``search.demo``'s flags, typed."""

    results: str = "results"
    out: str = "report"
    tasks: str = ",".join(t.demo for t in DEMO_TASKS)
    trials: int | None = None
    epochs: int | None = None
    final_seeds: int = 3
    n_resamples: int = 2000
    final_resamples: int = 1000
    seed: int = 0
    max_concurrent: int | None = None
    verbose: bool = False


def build_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="python -m search.demo",
        description="The whole loop on the embedded demo tasks: a small search per task on one "
        "Ray instance, the held-out final stage of each task's best configuration, and the "
        "report. Run it again to resume; finished work is not redone.",
    )
    p.add_argument("--results", default="results", help="results root (default: results)")
    p.add_argument("--out", default="report", help="report folder (default: report)")
    p.add_argument(
        "--tasks",
        default=",".join(t.demo for t in DEMO_TASKS),
        help="comma-separated demo datasets to run (default: all of "
        + ", ".join(t.demo for t in DEMO_TASKS)
        + ")",
    )
    p.add_argument("--trials", type=int, help="trials per task (default: the space's)")
    p.add_argument("--epochs", type=int, help="epochs per trial (default: the space's)")
    p.add_argument(
        "--final-seeds",
        type=int,
        default=3,
        help="seeds of the held-out final stage per task (0 = skip it; default: 3)",
    )
    p.add_argument(
        "--n-resamples", type=int, default=2000, help="bootstrap resamples of the report"
    )
    p.add_argument(
        "--final-resamples",
        type=int,
        default=1000,
        help="bootstrap resamples of the final stage's test intervals (default: 1000)",
    )
    p.add_argument("--seed", type=int, default=0, help="search seed (default: 0)")
    p.add_argument(
        "--max-concurrent", type=int, help="trials at once (default: what the CPUs allow)"
    )
    p.add_argument("--verbose", action="store_true", help="show every search's own output")
    return p


def _tasks(spec: str) -> list[DemoTask]:
    by = {t.demo: t for t in DEMO_TASKS}
    names = [n.strip() for n in spec.split(",") if n.strip()]
    unknown = [n for n in names if n not in by]
    if unknown or not names:
        raise ConfigError(
            f"--tasks names {unknown[0] if unknown else 'nothing'!r}; choose from {', '.join(by)}"
        )
    return [by[n] for n in dict.fromkeys(names)]


def _search_argv(t: DemoTask, opts: DemoOptions, exp_dir: Path) -> list[str]:
    from search.optimize.study import load_settings

    argv = ["--task", t.task, "--space", str(SPACES / t.space), "--data", f"demo:{t.demo}",
            "--name", t.demo, "--results", opts.results, "--seed", str(opts.seed),
            "--no-dashboard"]  # fmt: skip
    if load_settings(exp_dir) is not None:  # resume: the saved space and epochs hold
        argv = ["--task", t.task, "--name", t.demo, "--results", opts.results, "--resume",
                "--no-dashboard"]  # fmt: skip
    else:
        argv += [f"--epochs={opts.epochs}"] if opts.epochs else []
    argv += [f"--trials={opts.trials}"] if opts.trials else []
    argv += [f"--max-concurrent={opts.max_concurrent}"] if opts.max_concurrent else []
    argv += ["--verbose"] if opts.verbose else []
    return argv


def _budget(exp_dir: Path, t: DemoTask, opts: DemoOptions) -> int:
    from search.optimize.space import load_space
    from search.optimize.study import load_settings

    settings = load_settings(exp_dir)
    if opts.trials:
        return opts.trials
    if settings is not None:
        return int(settings["trials"])
    return load_space(SPACES / t.space, t.task).trials


def _finished(exp_dir: Path) -> int:
    from search.results import read_trials

    if not (exp_dir / "trials").is_dir():
        return 0
    trials = read_trials(exp_dir)
    return 0 if trials.empty else int(trials["number"].nunique())


@contextlib.contextmanager
def _captured(log: Path, verbose: bool) -> Iterator[None]:
    """Send a search's own lines to ``log`` (and to the terminal with --verbose)."""
    if verbose:
        yield
        return
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a", encoding="utf-8", buffering=1) as fh, contextlib.redirect_stdout(fh):
        yield


class _Ray:
    """Ray, started on first need and shut down once at the end."""

    def __init__(self, verbose: bool):
        self.verbose = verbose
        self.ray: Any = None

    def ensure(self) -> None:
        """Start Ray unless this process is connected (a search that shut it down would show
        here as a second start)."""
        if self.ray is None or not self.ray.is_initialized():
            from search.execution.ray_init import RayOptions, ray_init

            t0 = time.time()
            print("starting Ray (once for every task) ...", flush=True)
            self.ray = ray_init(RayOptions(verbose=self.verbose, dashboard=False))
            # Tune logs an ERROR when it cannot reuse an idle actor for the next trial, then
            # simply starts a new one: not an error of the demo, so keep it off the terminal
            logging.getLogger("ray.tune.execution.tune_controller").addFilter(
                lambda r: "Could not re-use actor" not in r.getMessage()
            )
            # "The `on_step_begin` operation took 0.7 s": Tune's own timing on a busy machine
            logging.getLogger("ray.tune.utils.util").setLevel(logging.ERROR)
            print(f"Ray up in {time.time() - t0:.0f} s", flush=True)

    def close(self) -> None:
        if self.ray is not None:
            self.ray.shutdown()


def run_search(t: DemoTask, opts: DemoOptions, ray: _Ray) -> int:
    """Run (or resume, or just reprint) the search of one demo task; returns its exit code."""
    from search.driver import cli as search_cli

    exp_dir = Path(opts.results).expanduser().resolve() / t.task / t.demo
    budget, done = _budget(exp_dir, t, opts), _finished(exp_dir)
    log = Path(opts.results) / "demo-logs" / f"{t.demo}.log"
    if done < budget:
        ray.ensure()
        print(f"{t.key}: searching ({budget - done} of {budget} trials to run; log {log}) ...",
              flush=True)  # fmt: skip
    t0 = time.time()
    sargs = search_cli.build_parser().parse_args(_search_argv(t, opts, exp_dir))
    with _captured(log, opts.verbose):
        code = search_cli.run(sargs)
    if done < budget:
        print(f"{t.key}: search finished in {time.time() - t0:.0f} s (exit {code})", flush=True)
    return code


def final_available() -> bool:
    """True when the held-out final stage (``search.final``) is installed."""
    return importlib.util.find_spec("search.stages.final") is not None


def run_final(t: DemoTask, opts: DemoOptions, ray: _Ray) -> list[str]:
    """The confirmation stage of the task: each backbone's best configuration with
    ``--final-seeds`` seeds, scored once on the test split; its summary lines. Finished runs
    are not redone."""
    if opts.final_seeds <= 0:
        return [f"{t.key}: held-out final stage skipped (--final-seeds 0)"]
    if not final_available():
        return [f"{t.key}: held-out final stage not run: search.final is not in this version"]
    from search.execution.ray_init import RayOptions
    from search.stages import final

    exp_dir = Path(opts.results).expanduser().resolve() / t.task / t.demo
    fargs = final.FinalRequest(
        experiment=str(exp_dir), per="backbone", seeds=opts.final_seeds,
        resume=(exp_dir / "final").is_dir(), n_resamples=opts.final_resamples,
        ray=RayOptions(verbose=opts.verbose, dashboard=False),
    )  # fmt: skip
    log = Path(opts.results) / "demo-logs" / f"{t.demo}-final.log"
    try:
        with _captured(log, opts.verbose):
            stage = final.prepare(fargs)
        if stage.todo:
            ray.ensure()
            print(f"{t.key}: confirmation stage ({len(stage.todo)} runs: each backbone's best "
                  f"x {stage.seeds} seeds; log {log}) ...", flush=True)  # fmt: skip
        with _captured(log, opts.verbose):
            code = final.execute(ray.ray, stage, fargs)
    except LssatError as exc:  # e.g. no COMPLETE trial: the other tasks still get theirs
        return [f"{t.key}: held-out final stage not run: {exc}"]
    lines = final.summary_lines(exp_dir)
    head = f"{t.key}: confirmation stage" + (f" (exit {code}, log {log})" if code else "")
    return [head, *lines[1:]] if lines else [f"{head}: no result (log {log})"]


def write_report(exp_dirs: list[Path], opts: DemoOptions) -> tuple[Path, Any, list]:
    """Build the report (and ``answers.json``) of the demo's experiments; returns (path,
    Results, sections)."""
    from analysis.data import load_results
    from analysis.report import write_report as write
    from analysis.sections import Options, build_sections

    res = load_results([str(p) for p in exp_dirs])
    sections = build_sections(res, Options(n_resamples=opts.n_resamples, seed=opts.seed))
    return write(res, sections, opts.out), res, sections


def summary_lines(res: Any, sections: list) -> list[str]:
    """Per-task winners and each research question's short answer, for the terminal."""
    from analysis.report import at_a_glance
    from analysis.sections import fmt
    from search.results.selection import best as chosen

    lines = ["winners (the selection rule: best value told to Optuna, on validation):"]
    conf = next((s for s in sections if s.key == "confirmation"), None)
    answers = conf.data["answers"] if conf is not None else {}
    for key in res.tasks:
        t = res.trials[res.trials["task_key"] == key]
        metric, mode = res.metric(key)
        best = chosen(t, mode)
        if best is None:
            lines.append(f"  {key:<18} no COMPLETE trial")
            continue
        line = (f"  {key:<18} {best['backbone']:<14} {metric} {fmt(best['final_value'], 3)} "
                f"(trial {best['trial_id']}, {len(res.task(key))} ranked trials)")
        a = answers.get(key)
        if a is not None and a.basis == "confirmation":
            lv = a.chosen
            line += (f"; test {fmt(lv.value, 3)} [{fmt(lv.low, 3)}, {fmt(lv.high, 3)}] over "
                     f"{lv.n_seeds} seeds")
        lines.append(line)
    for question, text in at_a_glance(sections).items():
        if len(text) == 1:
            lines.append(f"{question} {text[0]}")
        else:
            lines.append(question)
            lines.extend(f"  {t}" for t in text)
    return lines


def run(args: argparse.Namespace) -> int:
    """The command line as :class:`DemoOptions`, then the demo."""
    return run_demo(DemoOptions(**{f.name: getattr(args, f.name) for f in fields(DemoOptions)}))


def run_demo(opts: DemoOptions) -> int:
    """The demo itself; returns the exit code."""
    t_start = time.time()
    tasks = _tasks(opts.tasks)
    for flag, value, low in (("--trials", opts.trials, 1), ("--epochs", opts.epochs, 1),
                             ("--final-seeds", opts.final_seeds, 0),
                             ("--final-resamples", opts.final_resamples, 1),
                             ("--max-concurrent", opts.max_concurrent, 1)):  # fmt: skip
        if value is not None and value < low:
            raise ConfigError(f"{flag} is {value}; it must be at least {low}")
    from lssat.data.demo import demo_dataset

    t0 = time.time()
    for t in tasks:  # cached after the first run
        demo_dataset(name=t.demo)
    print(f"demo data ready in {time.time() - t0:.1f} s: {', '.join(t.key for t in tasks)}",
          flush=True)  # fmt: skip
    ray = _Ray(opts.verbose)
    code = 0
    exp_dirs = []
    try:
        for t in tasks:
            code = max(code, run_search(t, opts, ray))
            exp_dirs.append(Path(opts.results) / t.task / t.demo)
        finals = [line for t in tasks for line in run_final(t, opts, ray)]
    finally:
        ray.close()
    path, res, sections = write_report(exp_dirs, opts)
    print(f"report: {path.resolve()}")
    print("\n".join(summary_lines(res, sections)))
    print("\n".join(finals))
    print(f"demo done in {time.time() - t_start:.0f} s; results in {opts.results}/, search "
          f"logs in {opts.results}/demo-logs/")  # fmt: skip
    return code


def main(argv: list[str] | None = None) -> int:
    return run_cli(build_parser(), run, argv, interrupted="run the same command again to resume")


if __name__ == "__main__":
    sys.exit(main())
