"""The end-of-search report: counts, the best trial and its config, where everything lives."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from lssat.config import TrialConfig
from search import results
from search.optimize.study import StudyRef, storage_label


def best_trial(trials: Any, mode: str) -> dict[str, Any] | None:
    """The chosen trial: the one selection rule (``search.results.selection``), which is what
    ``search.final``, the demo and the report pick."""
    from search.results.selection import best

    return best(trials, mode)


def _duration(seconds: float) -> str:
    s = int(seconds)
    return (
        f"{s // 3600}h{s // 60 % 60:02d}m{s % 60:02d}s" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"
    )


def summarise(exp_dir: Path, ref: StudyRef, budget: int, elapsed: float) -> int:
    """Print the summary; exit code 1 when every trial failed, else 0."""
    trials = results.read_trials(exp_dir)
    counts = trials["status"].value_counts().to_dict() if not trials.empty else {}
    shown = ", ".join(f"{counts.get(s, 0)} {s}" for s in results.STATUSES)
    print(f"\n== {ref.name}: {len(trials)}/{budget} trials ({shown}) in {_duration(elapsed)}")
    mode = trials["mode"].iloc[0] if not trials.empty else "max"
    best = best_trial(trials, mode)
    if best is not None:
        metric = best["metric"]
        first = " (the first objective)" if _multi(trials) else ""
        print(
            f"best trial{first} #{int(best['number'])} ({best['trial_id']}): {metric} "
            f"{best['final_value']:.4f} at the last epoch, best {best['best_value']:.4f} "
            f"at epoch {int(best['best_epoch'])}"
        )
        params = json.loads(best["params"]) if isinstance(best.get("params"), str) else {}
        cfg = {
            k[len(results.CFG_PREFIX) :]: v
            for k, v in best.items()
            if k.startswith(results.CFG_PREFIX) and not _missing(v)
        }
        print("  searched: " + (", ".join(f"{k}={v}" for k, v in params.items()) or "-"))
        defaults = TrialConfig().to_dict()
        fixed = {
            k: v
            for k, v in cfg.items()
            if k not in params and k != "extra" and (k not in defaults or defaults[k] != v)
        }
        print(
            "  fixed:    "
            + (", ".join(f"{k}={v}" for k, v in fixed.items()) or "-")
            + " (other fields at TrialConfig defaults)"
        )
    else:
        print("no trial completed")
    from search.results.pareto import front_lines

    for line in front_lines(trials):  # a multi-objective search: its Pareto front
        print(line)
    from search.optimize.warm import summary_lines as warm_lines
    from search.stages.final import summary_lines

    for line in warm_lines(exp_dir, trials):  # --warm-start provenance, when there was one
        print(line)
    for line in summary_lines(exp_dir):  # the held-out stage, when it ran
        print(line)
    if "val_is_test" in trials and trials["val_is_test"].fillna(False).astype(bool).any():
        print("note: validation was the test split (--allow-test-selection): no held-out number")
    storage = storage_label(exp_dir, ref.url)
    print(
        f"results:     {exp_dir / results.TRIALS_DIR}, {exp_dir / results.EPOCHS_DIR} "
        "(search.results.read_trials / read_epochs)"
    )
    print(f"tensorboard: tensorboard --logdir {exp_dir / 'tensorboard'} --host 127.0.0.1")
    if ref.multi_objective:
        print(f"front:       optuna.load_study(...).best_trials (study {ref.name!r})")
    if ref.url:
        print(f"study:       {storage} (study {ref.name!r}; optuna-dashboard {storage})")
    else:
        print(
            f"study:       {storage} (study {ref.name!r}; optuna.load_study with "
            "JournalStorage(JournalFileBackend(path)), or optuna-dashboard PATH)"
        )
    failed_all = not trials.empty and counts.get("FAIL", 0) == len(trials)
    return 1 if failed_all else 0


def _multi(trials: Any) -> bool:
    from search.results.pareto import trial_values

    return trial_values(trials) is not None


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))
