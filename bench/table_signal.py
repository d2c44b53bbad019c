"""Does a learning-curve table hold signal? Its spread across configurations against the
seed-to-seed spread of one configuration (issue 25: the first must be >= 3x the second).

    python bench/table_signal.py bench/curves/sbi_1k            # the table and its seeds/

``bench/record_table.py --seed-check N`` records N of the table's configurations again with
another seed under ``TABLE/seeds/``. Across configurations: the standard deviation of the final
values of every completed configuration. Seed to seed: the within-configuration standard
deviation estimated from the N pairs, sqrt(mean((a - b)^2) / 2), with a 95 % interval from the
chi-square distribution of its N degrees of freedom (scipy). The ratio's interval divides the
across spread by that interval's ends. Prints one line and writes ``TABLE/signal.csv``.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def finals(folder: Path) -> dict[int, float]:
    """Trial number -> final value of each COMPLETE trial of a recorded folder."""
    from search import results

    if not (folder / results.TRIALS_DIR).is_dir():
        what = "the seed check" if folder.name == "seeds" else "a recorded table"
        raise SystemExit(f"error: {folder} holds no trials/ folder; {what} is recorded by "
                         "bench/record_table.py GRID --out TABLE --seed-check 20 (the seed "
                         "check runs after the whole grid)")  # fmt: skip
    t = results.read_trials(folder)
    t = t[(t["status"] == "COMPLETE") & t["final_value"].notna()]
    return {int(n): float(v) for n, v in zip(t["number"], t["final_value"], strict=True)}


def signal(table: Path) -> dict[str, float]:
    """The across-configuration and seed-to-seed spreads and their ratio (with intervals)."""
    import numpy as np
    from scipy import stats

    main, again = finals(table), finals(table / "seeds")
    pairs = [(main[n], again[n]) for n in sorted(again) if n in main]
    if len(pairs) < 2:
        raise SystemExit(f"error: {table}/seeds holds {len(pairs)} paired configurations; "
                         "record them with bench/record_table.py --seed-check 20")  # fmt: skip
    across = float(np.std(list(main.values()), ddof=1))
    d = np.array([a - b for a, b in pairs])
    n = len(d)
    within = math.sqrt(float(np.mean(d**2)) / 2)
    lo = within * math.sqrt(n / stats.chi2.ppf(0.975, n))
    hi = within * math.sqrt(n / stats.chi2.ppf(0.025, n))
    return {
        "configs": len(main),
        "pairs": n,
        "across_sd": across,
        "seed_sd": within,
        "seed_sd_low": lo,
        "seed_sd_high": hi,
        "ratio": across / within if within > 0 else math.inf,
        "ratio_low": across / hi if hi > 0 else math.inf,
        "ratio_high": across / lo if lo > 0 else math.inf,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("table", help="a table folder recorded by bench/record_table.py")
    args = p.parse_args(argv)
    import pandas as pd

    table = Path(args.table)
    s = signal(table)
    pd.DataFrame([s]).to_csv(table / "signal.csv", index=False)
    print(
        f"signal {table}: across {s['configs']} configurations sd {s['across_sd']:.4f}; seed to "
        f"seed sd {s['seed_sd']:.4f} [{s['seed_sd_low']:.4f}, {s['seed_sd_high']:.4f}] over "
        f"{s['pairs']} pairs; ratio {s['ratio']:.2f} [{s['ratio_low']:.2f}, {s['ratio_high']:.2f}]"
        f" ({'>=' if s['ratio_low'] >= 3 else 'not clearly >='} 3)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
