"""``python -m analysis.report RESULTS_DIR... [--out report/]``: the task-dependence report.

Writes ``OUT/report.html`` (self-contained: figures embedded as base64 PNG), the figures as
``OUT/figures/*.png``, the tables as ``OUT/tables/*.csv`` and the answers for scripts and CI as
``OUT/answers.json`` (``analysis.answers.answers_json``; the HTML says the same in words).
Bad input (a missing folder, no trials, a corrupt file, a bad option) is one sentence on stderr
and exit code 2.
"""

from __future__ import annotations

import argparse
import base64
import html
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pandas as pd  # noqa: E402

from analysis.data import VALUE_CHOICES, Results, load_results  # noqa: E402
from analysis.plots import png_bytes  # noqa: E402
from analysis.sections import BLOCKS, Options, Section, build_sections  # noqa: E402
from lssat.errors import LssatError  # noqa: E402

MAX_HTML_ROWS = 60
TITLE = "L-SSAT task dependence: which backbone for which task?"
CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1180px;
margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em}h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:2em}
h3{font-size:1.05em;margin-bottom:.3em}
.note{background:#fff7e0;border-left:4px solid #e0a800;padding:.4em .8em;margin:.4em 0}
.glance{background:#eef5ff;border-left:4px solid #3a7bd5;padding:.6em 1em}
table.tbl{border-collapse:collapse;font-size:.8em;margin:.5em 0}
table.tbl th,table.tbl td{border:1px solid #ccc;padding:2px 6px;text-align:right}
table.tbl th{background:#f3f3f3}
figure{margin:1em 0}figure img{max-width:100%;border:1px solid #eee}
figcaption{font-size:.8em;color:#666}details{margin:.4em 0}summary{cursor:pointer}
nav ul{columns:2;list-style:none;padding-left:0}
.scroll{overflow-x:auto}
.basis{font-size:1.05em;background:#f4f4f4;border-left:4px solid #555;padding:.5em 1em}
table.answers{border-collapse:collapse;font-size:.85em;margin:.3em 0 .8em 0;width:100%}
table.answers th,table.answers td{border:1px solid #ccc;padding:2px 6px;text-align:left}
table.answers th{background:#f3f3f3}table.answers td.num{text-align:right}
"""


def _slug(key: str, name: str) -> str:
    return f"{key}-{name}"


def _table_html(df: pd.DataFrame) -> str:
    shown = df.head(MAX_HTML_ROWS)
    body = '<div class="scroll">' + shown.to_html(index=False, border=0, classes="tbl", na_rep="-",
                         float_format=lambda x: f"{x:.4g}", escape=True) + "</div>"
    if len(df) > MAX_HTML_ROWS:
        body += f"<p>First {MAX_HTML_ROWS} of {len(df)} rows; the CSV has them all.</p>"
    return body


def _section_html(s: Section, png: dict[str, bytes]) -> str:
    e = html.escape
    out = [f'<section id="{e(s.key)}"><h2>{e(s.title)}</h2>']
    out += [f"<p>{e(p)}</p>" for p in s.text]
    out += [f'<div class="note">{e(n)}</div>' for n in s.notes]
    for head, paras in s.headed.items():
        out.append(f"<h3>{e(head)}</h3>")
        out += [f"<p>{e(p)}</p>" for p in paras]
    for name in s.figures:
        data = base64.b64encode(png[_slug(s.key, name)]).decode("ascii")
        out.append(f'<figure><img alt="{e(name)}" src="data:image/png;base64,{data}">'
                   f"<figcaption>{e(name)} (figures/{e(_slug(s.key, name))}.png)</figcaption>"
                   "</figure>")
    for name, df in s.tables.items():
        opened = " open" if len(df) <= 12 else ""
        out.append(f"<details{opened}><summary>{e(name)} ({len(df)} rows, "
                   f"tables/{e(_slug(s.key, name))}.csv)</summary>{_table_html(df)}</details>")
    out.append("</section>")
    return "\n".join(out)


def at_a_glance(sections: list[Section]) -> dict[str, list[str]]:
    """Each research question's short answer: its lead sentence, and for RQ2 (answered per
    task) every task's line."""
    answers = next((s for s in sections if s.key == "answers"), None)
    if answers is None or not answers.headed:
        return {}
    return {q: (lines if q.startswith("RQ2") else lines[:1])
            for q, lines in answers.headed.items() if lines}  # fmt: skip


def answers_table(df: pd.DataFrame) -> str:
    """Each task's backbones with value and interval, narrow enough for the page."""
    e = html.escape
    rows = []
    for _, r in df.iterrows():
        ci = (f"[{r['low']:.3f}, {r['high']:.3f}]" if pd.notna(r["low"]) and pd.notna(r["high"])
              else "-")  # fmt: skip
        n = f"{int(r['seeds'])} seeds" if r["basis"] == "confirmation" else f"{r['trials']} trials"
        what = r["metric"] if r["basis"] == "confirmation" else f"median {r['metric']}"
        rows.append(f"<tr><td>{e(str(r['task']))}</td><td>{e(str(r['backbone']))}"
                    f"{' (chosen)' if r['chosen'] else ''}</td><td>{e(what)}</td>"
                    f'<td class="num">{r["value"]:.3f}</td><td class="num">{e(ci)}</td>'
                    f"<td>{e(n)}, {r['trials']} search trials</td></tr>")  # fmt: skip
    head = ("<tr><th>task</th><th>backbone</th><th>metric</th><th>value</th>"
            "<th>interval</th><th>basis</th></tr>")
    return f'<table class="answers">{head}{"".join(rows)}</table>'


def render_html(res: Results, sections: list[Section], png: dict[str, bytes]) -> str:
    """The whole report as one HTML string (figures inlined from ``png``)."""
    e = html.escape
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    toc = "".join(f'<li><a href="#{e(s.key)}">{e(s.title)}</a></li>' for s in sections)
    glance = ""
    if answers := at_a_glance(sections):
        items = ""
        for q, lines in answers.items():
            sub = "".join(f"<li>{e(x)}</li>" for x in lines)
            body = e(lines[0]) if len(lines) == 1 else f"<ul>{sub}</ul>"
            items += f"<li><b>{e(q)}</b> {body}</li>"
        glance = f'<div class="glance"><b>At a glance</b><ul>{items}</ul></div>'
    conf = next((s for s in sections if s.key == "confirmation"), None)
    basis = f'<p class="basis">{e(conf.data["basis"])}</p>' if conf is not None else ""
    if conf is not None and "per_backbone" in conf.tables:
        glance += answers_table(conf.tables["per_backbone"])
    held = next((s for s in sections if s.key == "heldout"), None)
    if held is not None and held.data.get("headline"):  # held-out test numbers, or why none
        items = "".join(f"<li>{e(line)}</li>" for line in held.data["headline"])
        glance = f'<div class="glance"><b>Held-out test</b><ul>{items}</ul></div>' + glance
    body = "\n".join(_section_html(s, png) for s in sections)
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{e(TITLE)}</title>'
        f"<style>{CSS}</style></head><body><h1>{e(TITLE)}</h1>{basis}"
        f"<p>Generated {stamp} from {e(', '.join(res.sources))}.</p>{glance}"
        f"<nav><ul>{toc}</ul></nav>{body}</body></html>\n"
    )


def write_report(res: Results, sections: list[Section], out: str | Path) -> Path:
    """Write figures (PNG), tables (CSV) and ``report.html`` under ``out``; returns its path."""
    out = Path(out)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    (out / "tables").mkdir(parents=True, exist_ok=True)
    png: dict[str, bytes] = {}
    for s in sections:
        for name, fig in s.figures.items():
            slug = _slug(s.key, name)
            png[slug] = png_bytes(fig)
            (out / "figures" / f"{slug}.png").write_bytes(png[slug])
        for name, df in s.tables.items():
            df.to_csv(out / "tables" / f"{_slug(s.key, name)}.csv", index=False)
    path = out / "report.html"
    path.write_text(render_html(res, sections, png), encoding="utf-8")
    conf = next((s for s in sections if s.key == "confirmation"), None)
    if conf is not None:
        doc = json.dumps(conf.data["json"], indent=1, allow_nan=False)
        (out / "answers.json").write_text(doc + "\n", encoding="utf-8")
    return path


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m analysis.report",
        description="Task-dependence report over the trial/epoch Parquet of one or many searches.",
    )
    p.add_argument("results", nargs="+", metavar="RESULTS_DIR",
                   help="results root, task folder or experiment folder (several allowed)")
    p.add_argument("--out", default="report", help="output folder (default: report/)")
    p.add_argument("--value", choices=list(VALUE_CHOICES), default="final",
                   help="value of a trial in the descriptive sections: the one told to Optuna "
                   "(final, the default and the selection rule everywhere) or its best epoch")
    p.add_argument("--include-pruned", action="store_true",
                   help="rank PRUNED trials too (with their truncated values)")
    p.add_argument("--top-k", type=int, default=5, help="trials listed per task (default: 5)")
    p.add_argument("--alpha", type=float, default=0.05, help="significance level (default 0.05)")
    p.add_argument("--level", type=float, default=0.95, help="interval level (default 0.95)")
    p.add_argument("--n-resamples", type=int, default=2000, help="bootstrap resamples")
    p.add_argument("--seed", type=int, default=0, help="seed of bootstrap and fANOVA")
    p.add_argument("--blocks", choices=BLOCKS, default="auto",
                   help="Friedman blocks: tasks (auto = task; trials are never paired across "
                   "tasks by seed)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        opt = Options(top_k=args.top_k, alpha=args.alpha, level=args.level,
                      n_resamples=args.n_resamples, seed=args.seed, blocks=args.blocks)
        res = load_results(args.results, value=args.value, include_pruned=args.include_pruned)
        sections = build_sections(res, opt)
        path = write_report(res, sections, args.out)
    except LssatError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: cannot write the report to {args.out!r} ({exc.strerror or exc})",
              file=sys.stderr)
        return 2
    n_fig = sum(len(s.figures) for s in sections)
    n_tab = sum(len(s.tables) for s in sections)
    n_notes = sum(len(s.notes) for s in sections)
    print(f"wrote {path} and {path.with_name('answers.json')} ({n_fig} figures, {n_tab} "
          f"tables, {n_notes} notes on missing inputs)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
