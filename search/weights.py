"""``python -m search.weights {fetch,list} --space SPACE``: pretrained weights for offline nodes.

``fetch --out DIR`` downloads, once, on a machine with internet, the ImageNet-pretrained
weights of every backbone the space can draw (timm's own download) and stores each as
``DIR/<timm model name>.safetensors``; files already there are kept (``--force`` replaces
them). ``list [--dir DIR]`` prints those backbones and whether ``DIR`` holds them. A search
then reads the folder with ``python -m search.run --weights-dir DIR`` (or ``$LSSAT_WEIGHTS``);
see :mod:`lssat.weights`. Exit codes: 0 done, 1 a download failed, 2 bad command line or space.

For the search driver: :func:`weights_table` checks the folder before anything is written and
fingerprints each file; :func:`row_columns` gives a trial row its ``weights_source`` and
``weights_sha256``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from lssat.errors import ConfigError, LssatError
from lssat.weights import (
    SUFFIX,
    hub_source,
    missing_message,
    sha256_file,
    weights_dir,
    weights_file,
)
from search.cli import Parser

Downloader = Callable[[str], Mapping[str, Any]]


class DownloadError(LssatError):
    """A backbone's weights could not be downloaded (exit code 1)."""


# ------------------------------------------------------------------------ the space
def space_backbones(space: Any) -> list[str]:
    """Every backbone ``space`` can draw: fixed, searched choices and enqueued values."""
    from lssat.config import TrialConfig

    names: list[str] = []
    if "backbone" in space.fixed:
        names.append(str(space.fixed["backbone"]))
    for p in space.params:
        if p.name == "backbone":
            names += [str(c) for c in p.choices]
    names += [str(e["backbone"]) for e in space.enqueue if "backbone" in e]
    if not names:
        names.append(TrialConfig.backbone)
    return list(dict.fromkeys(names))


def space_pretrained(space: Any) -> bool:
    """True when a trial of ``space`` can have ``pretrained: true``."""
    if space.fixed.get("pretrained") is True:
        return True
    searched = any(p.name == "pretrained" and True in p.choices for p in space.params)
    return searched or any(e.get("pretrained") is True for e in space.enqueue)


def pretrained_backbones(space: Any) -> list[str]:
    """The backbones whose weights a search of ``space`` loads ([] when none is pretrained)."""
    return space_backbones(space) if space_pretrained(space) else []


# ----------------------------------------------------------------- search driver side
def weights_table(
    space: Any, folder: str | Path | None, space_label: str = "SPACE"
) -> tuple[Path | None, dict[str, dict[str, str | None]]]:
    """The weights folder (``folder`` or ``$LSSAT_WEIGHTS``) and, per pretrained backbone,
    ``{"source", "sha256"}``: the local file and its sha256, or timm's download location
    (sha256 None) when there is no folder. A missing folder or file is a ConfigError."""
    where = weights_dir(folder)
    if where is not None and not where.is_dir():
        raise ConfigError(f"--weights-dir {where} is not a folder")
    table: dict[str, dict[str, str | None]] = {}
    for name in pretrained_backbones(space):
        if where is None:
            table[name] = {"source": hub_source(name), "sha256": None}
            continue
        path = weights_file(name, where)
        if not path.is_file():
            raise ConfigError(missing_message(name, where, space_label))
        table[name] = {"source": str(path), "sha256": sha256_file(path)}
    return where, table


def describe(space: Any, where: Path | None, table: Mapping[str, Any]) -> str:
    """The search's one line about weights (the demo's says it trains from scratch)."""
    if not table:
        return "weights: none pretrained, every trial trains from scratch (pretrained: false)"
    if space.fixed.get("pretrained") is not True:
        where_text = f"from {where}" if where is not None else "downloaded by timm"
        return f"weights: pretrained is searched: ImageNet weights {where_text}, or from scratch"
    if where is None:
        return (
            f"weights: ImageNet-pretrained, downloaded by timm on each worker for "
            f"{len(table)} backbone(s) (needs internet; --weights-dir for offline nodes)"
        )
    return f"weights: ImageNet-pretrained from {where} ({len(table)} backbone(s), sha256 recorded)"


def row_columns(config: Mapping[str, Any], table: Mapping[str, Any]) -> dict[str, str | None]:
    """``weights_source`` / ``weights_sha256`` of a trial row; both None when it trained from
    scratch."""
    entry = table.get(str(config.get("backbone"))) if config.get("pretrained") else None
    entry = entry or {}
    return {"weights_source": entry.get("source"), "weights_sha256": entry.get("sha256")}


# -------------------------------------------------------------------------- fetching
def timm_download(name: str) -> dict[str, Any]:
    """The ImageNet-pretrained state dict timm downloads for ``name`` (its own classifier)."""
    import timm

    model = timm.create_model(name, pretrained=True)
    return {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}


def save_weights(state: Mapping[str, Any], path: Path) -> Path:
    """Write a state dict as safetensors atomically (temporary file + rename)."""
    from safetensors.torch import save_file

    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        save_file(dict(state), str(tmp))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def fetch(
    names: list[str],
    out: Path,
    *,
    force: bool = False,
    download: Downloader = timm_download,
    say: Callable[[str], None] = print,
) -> list[Path]:
    """Download each backbone's weights into ``out`` (kept when there unless ``force``)."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--out {out} cannot be created ({exc.strerror or exc})") from None
    paths = []
    for name in names:
        path = weights_file(name, out)
        if path.is_file() and not force:
            say(f"{name}: kept {path}")
            paths.append(path)
            continue
        try:
            state = download(name)
        except Exception as exc:  # noqa: BLE001 - network, hub or timm: one sentence
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
            raise DownloadError(
                f"downloading the pretrained weights of backbone {name!r} failed "
                f"({type(exc).__name__}: {first}); run this on a machine with internet"
            ) from None
        save_weights(state, path)
        say(f"{name}: saved {path} (sha256 {sha256_file(path)[:12]})")
        paths.append(path)
    return paths


# ------------------------------------------------------------------------------- CLI


def build_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="python -m search.weights",
        description="Pretrained backbone weights for nodes without internet.",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="{fetch,list}")
    f = sub.add_parser("fetch", help=f"download every backbone of a space as <name>{SUFFIX}")
    f.add_argument("--space", required=True, help="search-space YAML, e.g. spaces/deepfake.yaml")
    f.add_argument("--out", required=True, type=Path, help="the weights folder to fill")
    f.add_argument("--force", action="store_true", help="download files already there again")
    ls = sub.add_parser("list", help="the backbones a space can draw, and which DIR holds")
    ls.add_argument("--space", required=True, help="search-space YAML")
    ls.add_argument("--dir", type=Path, default=None, help="weights folder (default: none)")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    args = build_parser().parse_args(argv)
    from search.space import load_space

    try:
        space = load_space(args.space)
        names = space_backbones(space)
        if args.command == "list":
            if not space_pretrained(space):
                print(f"note: {args.space} has no pretrained: true; its trials train from scratch")
            for name in names:
                where = "" if args.dir is None else (
                    " present" if weights_file(name, args.dir).is_file() else " MISSING"
                )  # fmt: skip
                print(f"{name}{where}")
            return 0
        fetch(names, args.out.expanduser().resolve(), force=args.force)
    except DownloadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except LssatError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{len(names)} backbone(s) in {args.out}; use it with --weights-dir {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
