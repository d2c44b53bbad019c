"""``python -m search.weights {fetch,list} --space SPACE``: pretrained weights for offline nodes.

``fetch --out DIR`` downloads, once, on a machine with internet, the ImageNet-pretrained
weights of every backbone the space can draw (timm's own download) and stores each as
``DIR/<timm model name>.safetensors``; files already there are kept (``--force`` replaces
them). ``list [--dir DIR]`` prints those backbones and whether ``DIR`` holds them. A search
then reads the folder with ``python -m search.run --weights-dir DIR`` (or ``$LSSAT_WEIGHTS``);
see :mod:`lssat.weights`. Exit codes: 0 done, 1 a download failed, 2 bad command line or space.

The search driver's side (which backbones need weights, the folder check and fingerprints)
lives in :mod:`search.optimize.pretrained`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lssat.errors import LssatError
from lssat.weights import SUFFIX, weights_file
from search.cli import Parser
from search.optimize.pretrained import space_backbones, space_pretrained
from search.stages.weights import DownloadError, fetch


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
    from search.optimize.space import load_space

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
