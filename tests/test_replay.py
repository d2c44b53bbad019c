"""``search.replay``: the accounting of a replayed search on a tiny table with a planted best
is exact, random search draws without replacement, epoch-time spikes are repaired, ASHA's
decisions are Ray's own, and the CLI prints the issue's line (means with 95 % intervals)."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from search import replay

LRS = [1e-4, 2e-4, 3e-4, 5e-4, 7e-4, 1e-3, 2e-3, 3e-3]  # config i = LRS[i]
SPACE = {
    "task": "deepfake",
    "metric": "val_auc",
    "mode": "max",
    "sampler": {"name": "grid"},
    "scheduler": "none",
    "fixed": {"epochs": 2, "img_size": 32, "patch_size": 8},
    "params": {"lr": {"low": 1e-4, "high": 3e-3, "log": True, "grid": LRS}},
}


def _table(tmp_path: Path, times: dict[int, float] | None = None, late: bool = False) -> Path:
    """8 configs x 2 epochs, final value i/10: config 7 is the planted best. ``late``: config 7
    is a late bloomer (worst of all after epoch 1); ``times``: seconds per epoch by config."""
    curves = []
    for i, lr in enumerate(LRS):
        first = 0.0 if (late and i == 7) else i / 10
        t = (times or {}).get(i, 1.0)
        curves.append(({"lr": lr}, [first, i / 10], [t, t]))
    return replay.write_table(tmp_path / "exp", SPACE, curves)


def _order(*configs: int) -> list[dict]:
    return [{"lr": LRS[i]} for i in configs]


def test_table_reads_back_with_its_top_set(tmp_path: Path) -> None:
    table = replay.load_table(_table(tmp_path))
    assert len(table.configs) == 8 and table.grid_epochs == 16 and table.epochs == 2
    best = replay.key({"lr": LRS[7]})
    assert table.top_set(0.05) == {best} and table.best() == pytest.approx(0.7)
    assert len(table.top_set(0.25)) == 2  # configs 6 and 7
    assert table.regret(None) == pytest.approx(0.7)  # no incumbent yet = the worst config


def test_sequential_accounting_is_exact(tmp_path: Path) -> None:
    """One slot, no early stopping: the planted best found as the k-th trial costs 2k epochs;
    regret at each fraction is that of the incumbent held then."""
    table = replay.load_table(_table(tmp_path))
    t = replay.simulate(table, "random", seed=3, concurrency=1, top=0.05, full=True)
    keys = [e["key"] for e in t.events]
    assert sorted(keys) == sorted(table.configs)  # a shuffled grid: each configuration once
    assert [e["cum_epochs"] for e in t.events] == [2 * (i + 1) for i in range(len(keys))]
    assert sum(e["epochs"] for e in t.events) == 16  # stops at the grid's cost
    value = {k: c.final for k, c in table.configs.items()}
    best = replay.key({"lr": LRS[7]})
    k = keys.index(best) + 1 if best in keys else None
    assert t.reach_epochs == (2 * k if k else math.inf)
    assert t.reach_hours == (2 * k / 3600 if k else math.inf)
    for frac in replay.FRACTIONS:
        done = [value[x] for x in keys[: int(frac * 16 // 2)]]
        assert t.regret_at[frac] == pytest.approx(0.7 - (max(done) if done else 0.0))


def test_async_completion_order_and_clock(tmp_path: Path) -> None:
    """Two slots: config 0 (5 s epochs) is asked first, the planted best (1 s epochs) second;
    the best finishes first, after 2 of the grid's 16 epochs, at 2 simulated seconds."""
    table = replay.load_table(_table(tmp_path, times={0: 5.0}))
    t = replay.simulate(table, "random", 0, 2, 0.05, order=_order(0, 7, 1, 2, 3, 4, 5, 6),
                        full=True)  # fmt: skip
    first = t.events[0]
    assert first["key"] == replay.key({"lr": LRS[7]}) and first["end"] == 2.0
    assert t.reach_epochs == 2 and t.reach_hours == pytest.approx(2 / 3600)
    # c1 runs 2..4, c2 4..6 in the freed slot; c0's epochs end at 5 and 10
    ends = {e["key"]: (e["end"], e["cum_epochs"]) for e in t.events[:3]}
    assert ends[replay.key({"lr": LRS[1]})] == (4.0, 4)
    assert ends[replay.key({"lr": LRS[2]})] == (6.0, 7)  # c0's first epoch (t=5) counted
    assert t.regret_at[0.05] == pytest.approx(0.7) and t.regret_at[0.25] == 0.0


def test_asha_decisions_are_rays_on_a_recorded_sequence(tmp_path: Path) -> None:
    """Grace 1, reduction factor 2, one slot: config 1 and the late-blooming best fall below
    the rung's median after epoch 1 and are stopped, as Ray's ASHAScheduler decides."""
    table = replay.load_table(_table(tmp_path, late=True))
    settings = replay.Settings({}, {"grace_period": 1, "reduction_factor": 2})
    t = replay.simulate(
        table, "random_asha", 0, 1, 0.05, settings, order=_order(3, 5, 1, 7, 6, 4, 2, 0)
    )
    head = [(e["status"], e["epochs"], e["cum_epochs"]) for e in t.events[:4]]
    assert head == [("COMPLETE", 2, 2), ("COMPLETE", 2, 4), ("PRUNED", 1, 5), ("PRUNED", 1, 6)]
    assert t.events[1]["incumbent"] == pytest.approx(0.5)
    # without early stopping the same order reaches the best after 4 trials = 8 epochs
    plain = replay.simulate(table, "random", 0, 1, 0.05, order=_order(3, 5, 1, 7))
    assert plain.reach_epochs == 8


def test_cli_prints_the_issue_line_and_writes_csv_and_png(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    exp = _table(tmp_path)
    code = replay.main([str(exp), "--seeds", "3", "--concurrency", "2", "--out", str(tmp_path)])
    lines = capsys.readouterr().out.strip().splitlines()
    assert code == 0
    fig = r"\d\.\d{3} \[-?\d\.\d{3}, \d\.\d{3}\]"
    pattern = (
        rf"replay: tpe_asha reaches the grid's top 1 % at {fig} of the grid's epochs \(mean of 3 "
        rf"seeds, \d/3 reached\); random {fig} \(\d/3\); random_asha {fig} \(\d/3\); tpe {fig} "
        r"\(\d/3\)(; unreached seeds count as the full grid \(1\.000\))?"
    )
    assert re.fullmatch(pattern, lines[-1]), lines[-1]
    for name in ("replay_summary.csv", "replay_runs.csv", "replay_curves.csv", "replay.png"):
        assert (tmp_path / name).stat().st_size > 0
    import pandas as pd

    summary = pd.read_csv(tmp_path / "replay_summary.csv")
    assert list(summary["searcher"]) == list(replay.SEARCHERS)
    assert {"cost_frac_mean", "cost_frac_low", "cost_frac_high", "reach_frac_median",
            "regret_at_0.1_q75"} <= set(summary.columns)  # fmt: skip


def test_unreached_seeds_count_as_the_full_grid_and_are_said(tmp_path: Path) -> None:
    import pandas as pd

    from search.replay.figures import runs_frame, summary_frame

    table = replay.load_table(_table(tmp_path))
    inf = replay.Trace("tpe_asha", 0, [], math.inf, math.inf, dict.fromkeys(replay.FRACTIONS, 0.7),
                       [(0.0, 0.7)])  # fmt: skip
    half = replay.Trace("tpe_asha", 1, [], 8, 8 / 3600, dict.fromkeys(replay.FRACTIONS, 0.0),
                        [(0.0, 0.7)])  # fmt: skip
    runs = runs_frame(table, [inf, half])
    assert list(runs["cost_frac"]) == [1.0, 0.5]  # unreached: the whole grid
    s = summary_frame(table, runs, 0.05, 1)
    assert s["cost_frac_mean"].iloc[0] == pytest.approx(0.75) and s["reached"].iloc[0] == 1
    line = replay.last_line(s, "top 5 %", 2)
    assert line.startswith("replay: tpe_asha reaches the grid's top 5 % at 0.750 [")
    assert "(mean of 2 seeds, 1/2 reached)" in line
    assert line.endswith("; unreached seeds count as the full grid (1.000)")
    assert pd.notna(s["cost_frac_low"].iloc[0])
    assert replay._q([1.0, math.inf, math.inf], 50) == math.inf
    assert replay._q([0.25, 0.5, math.inf], 50) == 0.5


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--searchers", "tpe,bohb"], "--searchers holds 'bohb'; allowed"),
        (["--top", "0"], "--top is 0; give a fraction in (0, 1) or a whole count"),
        (["--top", "2.5"], "--top is 2.5; give a fraction in (0, 1) or a whole count"),
        (["--concurrency", "0"], "--concurrency is 0; it must be at least 1"),
    ],
)
def test_bad_flags_are_one_sentence_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], expected: str
) -> None:
    assert replay.main([str(_table(tmp_path)), *argv]) == 2
    err = capsys.readouterr().err
    assert expected in err and err.count("\n") == 1


def test_incomplete_grid_or_missing_folder_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    exp = _table(tmp_path)
    assert replay.main([str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err
    victim = sorted((exp / "trials").glob("*.parquet"))[2]
    victim.unlink()
    assert replay.main([str(exp)]) == 2
    err = capsys.readouterr().err
    assert "holds 7 of the 8 grid configurations" in err and err.count("\n") == 1


@pytest.mark.slow
def test_search_efficiency_notebook_executes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """analysis/search_efficiency.ipynb runs headless on two tasks' replay CSVs."""
    import nbformat
    from nbclient import NotebookClient

    folders = []
    for task in ("deepfake", "emotion"):
        exp = replay.write_table(
            tmp_path / task, {**SPACE, "task": task}, [
                ({"lr": lr}, [i / 10, i / 10], [1.0, 1.0]) for i, lr in enumerate(LRS)
            ])  # fmt: skip
        assert replay.main([str(exp), "--seeds", "2", "--searchers", "random,tpe_asha"]) == 0
        folders.append(str(exp / "replay"))
    monkeypatch.setenv("LSSAT_REPLAY", ":".join(folders))
    path = Path(__file__).resolve().parents[1] / "analysis" / "search_efficiency.ipynb"
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()  # fmt: skip
    outs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    text = "".join(o.get("text", "") for o in outs)
    assert "2 replay(s): tables deepfake, emotion" in text
    assert "emotion: fraction of the grid's epochs to reach its top set (mean, 95 % CI" in text
    assert "(2/2)" in text  # reached by both seeds
    assert "emotion: ratio to random search (mean cost, 95 % CI): tpe_asha " in text
    assert sum("image/png" in o.get("data", {}) for o in outs) == 3  # the bars + 2 curves


def test_scale_bench_accounting(tmp_path: Path) -> None:
    """bench/scale.py's busy fraction and per-trial driver overhead on hand-made epoch rows:
    2 GPUs, trials a (0-10 s) and b (0-4 s) first, c takes b's slot (first report at 7 s after
    a 2 s first epoch: 1 s overhead)."""
    import importlib.util

    from search import results

    spec = importlib.util.spec_from_file_location(
        "scale", Path(__file__).resolve().parents[1] / "bench" / "scale.py"
    )
    scale = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(scale)
    rows = {  # trial: (start, [(report time, sleep)])
        "a": (0.0, [(5.0, 5.0), (10.0, 5.0)]),
        "b": (0.0, [(2.0, 2.0), (4.0, 2.0)]),
        "c": (5.0, [(7.0, 2.0), (9.0, 2.0)]),
    }
    for n, (tid, (start, reps)) in enumerate(rows.items()):
        ident = {"task": "deepfake", "experiment": "x", "trial_id": tid, "number": n}
        results.write_epochs(tmp_path, ident, [
            {"epoch": e + 1, "replay_start": start, "replay_report": r, "replay_sleep_s": s}
            for e, (r, s) in enumerate(reps)
        ])  # fmt: skip
    m = scale.measure(tmp_path, gpus=2, t0=0.0)
    assert m["trials_run"] == 3 and m["makespan_s"] == 10.0
    assert m["busy"] == pytest.approx((10 + 4 + 4) / (2 * 10))
    assert m["overhead_s"] == pytest.approx(1.0)  # b freed its slot at 4, c reported at 7 - 2
    assert m["overhead_share"] == pytest.approx(1.0 / 6.0)


def test_top_takes_a_fraction_or_a_count(tmp_path: Path) -> None:
    table = replay.load_table(_table(tmp_path))
    assert table.top_count(0.05) == 1 and table.top_count(0.25) == 2
    assert table.top_count(3) == 3 and table.top_set(3) == {
        replay.key({"lr": LRS[i]}) for i in (5, 6, 7)
    }


def test_a_paused_epoch_is_replayed_at_its_trials_median(tmp_path: Path) -> None:
    """A recording paused in config 7's last epoch (313 s against 1 s) is repaired on load, as
    bench/scale.py repairs it: the same rule (5x the trial's median), counted."""
    curves = [({"lr": lr}, [i / 10] * 4, [1.0, 1.0, 1.0, 313.0 if i == 7 else 1.0])
              for i, lr in enumerate(LRS)]  # fmt: skip
    exp = replay.write_table(tmp_path / "spiky", {**SPACE, "fixed": {**SPACE["fixed"],
                             "epochs": 4}}, curves)  # fmt: skip
    table = replay.load_table(exp)
    assert table.spikes == 1 and table.configs[replay.key({"lr": LRS[7]})].times[-1] == 1.0
    raw = replay.load_table(exp, repair=False)
    assert raw.spikes == 0 and raw.configs[replay.key({"lr": LRS[7]})].times[-1] == 313.0


def test_a_replay_stops_once_reached_and_a_quarter_spent(tmp_path: Path) -> None:
    table = replay.load_table(_table(tmp_path))
    t = replay.simulate(table, "random", 0, 1, 0.05, order=_order(7))
    assert t.reach_epochs == 2 and t.events[-1]["cum_epochs"] == 4  # 0.25 x 16 epochs
