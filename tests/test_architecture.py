"""The house rules of the layout (docs/architecture.md), read from the source with ``ast``:
no import circles in ``lssat``, ``search`` and ``analysis`` (function-level imports count);
``lssat`` imports neither ``search`` nor ``analysis``; ``analysis`` needs nothing of ``search``
but the results format; only the demo imports ``analysis`` from ``search``; each ``search``
package's imports point down its layer order; no source file over 600 lines; no function below
the command lines takes an ``argparse.Namespace``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("lssat", "search", "analysis")
MAX_LINES = 600
# search's packages, bottom first, and the packages (and top modules) each may import
ALLOWED = {
    "results": set(),
    "optimize": {"results"},
    "execution": {"results", "optimize"},
    "stages": {"results", "optimize", "execution"},
    "replay": {"results", "optimize", "execution", "cli"},
    "driver": {"results", "optimize", "execution", "stages", "cli"},
    "testing": set(),
}
LAYERS = tuple(ALLOWED)
# the command-line modules: the only places an argparse.Namespace is read
CLI_MODULES = {
    "search.cli",
    "search.run",
    "search.final",
    "search.evaluate",
    "search.weights",
    "search.replay_mo",
    "search.demo",
    "search.driver.cli",
    "search.replay.cli",
    "analysis.report",
    "lssat.data.prepare",
}


def modules(root: Path = ROOT) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file of the three packages."""
    out = {}
    for pkg in PACKAGES:
        for f in sorted((root / pkg).rglob("*.py")):
            parts = f.relative_to(root).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            out[name] = f
    return out


def import_graph(mods: dict[str, Path]) -> dict[str, set[str]]:
    """module -> the project modules it imports anywhere in its file (top or function level)."""
    edges: dict[str, set[str]] = {}
    for name, path in mods.items():
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    deps.add(full if full in mods else node.module)
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names)
        edges[name] = {d for d in deps if d in mods and d != name}
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "search" and parts[1] in LAYERS else None


def violations(edges: dict[str, set[str]]) -> list[str]:
    """Every import that breaks a direction rule, as 'a -> b (why)'."""
    bad = []
    for a, deps in sorted(edges.items()):
        for b in sorted(deps):
            top_a, top_b = a.split(".")[0], b.split(".")[0]
            if top_a == "lssat" and top_b in ("search", "analysis"):
                bad.append(f"{a} -> {b} (lssat imports neither search nor analysis)")
            if top_a == "analysis" and top_b == "search" and not b.startswith("search.results"):
                bad.append(f"{a} -> {b} (analysis reads search's results format only)")
            if top_a == "search" and top_b == "analysis" and a != "search.demo":
                bad.append(f"{a} -> {b} (only the demo orchestrator imports analysis)")
            la, sub_b = layer(a), b.split(".")[1] if b.count(".") else ""
            if la and top_b == "search" and sub_b != la and sub_b not in ALLOWED[la]:
                bad.append(f"{a} -> {b} (search.{la} may import only the layers below it)")
    return bad


def namespace_readers(mods: dict[str, Path]) -> list[str]:
    """Functions outside the command-line modules with an argparse.Namespace parameter."""
    out = []
    for name, path in mods.items():
        if name in CLI_MODULES:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                for arg in node.args.args + node.args.kwonlyargs:
                    if arg.annotation is not None and "Namespace" in ast.unparse(arg.annotation):
                        out.append(f"{name}.{node.name}({arg.arg})")
    return out


def test_no_import_circles_anywhere() -> None:
    assert cycles(import_graph(modules())) == []


def test_imports_point_down() -> None:
    assert violations(import_graph(modules())) == []


def test_no_source_file_over_600_lines() -> None:
    long = {n: len(p.read_text().splitlines()) for n, p in modules().items()}
    assert {n: k for n, k in long.items() if k > MAX_LINES} == {}


def test_no_function_below_the_cli_takes_the_namespace() -> None:
    assert namespace_readers(modules()) == []


def test_every_search_package_says_what_it_owns_and_must_not_import() -> None:
    for pkg in LAYERS:
        doc = ast.get_docstring(ast.parse((ROOT / "search" / pkg / "__init__.py").read_text()))
        assert doc and "import" in doc.lower() and ("never" in doc or "nothing" in doc), pkg


@pytest.mark.parametrize(
    ("files", "rule"),
    [
        ({"search/a": "from search.b import x", "search/b": "def x():\n    from search.a import y"},
         None),
        ({"lssat/m": "import search.run", "search/run": ""}, "lssat imports"),
        ({"analysis/m": "from search.optimize import study", "search/optimize/study": ""},
         "results format"),
        ({"search/results/m": "from search.optimize.study import s", "search/optimize/study": ""},
         "layers below"),
        ({"search/optimize/m": "from analysis import stats", "analysis/stats": ""},
         "only the demo"),
    ],
)  # fmt: skip
def test_the_checks_catch_a_broken_rule(
    tmp_path: Path, files: dict[str, str], rule: str | None
) -> None:
    """Each checker fails on a tree that breaks its rule (not only passes on today's code)."""
    for rel, src in files.items():
        path = tmp_path / f"{rel}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(src + "\n")
    for pkg in PACKAGES:
        (tmp_path / pkg).mkdir(exist_ok=True)
    edges = import_graph(modules(tmp_path))
    if rule is None:
        assert cycles(edges) == [["search.a", "search.b"]]
    else:
        assert any(rule in v for v in violations(edges)), violations(edges)


def test_namespace_check_catches_a_reader(tmp_path: Path) -> None:
    (tmp_path / "search" / "stages").mkdir(parents=True)
    for pkg in ("lssat", "analysis"):
        (tmp_path / pkg).mkdir()
    (tmp_path / "search" / "stages" / "x.py").write_text(
        "import argparse\n\n\ndef go(args: argparse.Namespace) -> None: ...\n"
    )
    assert namespace_readers(modules(tmp_path)) == ["search.stages.x.go(args)"]
