"""Notebook helpers: show a ``Section`` (text, notes, figures, tables) with IPython's display."""

from __future__ import annotations

import html

from analysis.plots import png_bytes
from analysis.sections import Section


def show(section: Section, max_rows: int = 20) -> None:
    """Display one section in a notebook: heading, paragraphs, notes, figures, table heads."""
    from IPython.display import HTML, Image, display

    e = html.escape
    parts = [f"<h3>{e(section.title)}</h3>"]
    parts += [f"<p>{e(p)}</p>" for p in section.text]
    parts += [f"<p style='background:#fff7e0'>Note: {e(n)}</p>" for n in section.notes]
    for head, lines in section.headed.items():
        parts.append(f"<h4>{e(head)}</h4>" + "".join(f"<p>{e(x)}</p>" for x in lines))
    display(HTML("".join(parts)))
    for fig in section.figures.values():
        display(Image(data=png_bytes(fig)))
    for name, df in section.tables.items():
        display(HTML(f"<b>{e(name)}</b> ({len(df)} rows)"))
        display(df.head(max_rows))
