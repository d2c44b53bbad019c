"""``python -m lssat.data.prepare DATASET --root RAW --out DIR``

DATASET: faceforensics, celebdf (a test-only set), celeba, affectnet or folder.

Turns a raw dataset, as downloaded, into face-crop shards + ``meta.json`` (see
``docs/data.md``). Resumable: run the same command again after an interruption.
Bad input: one sentence on stderr, exit code 2.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import NoReturn

from lssat.errors import LssatError

DATASETS = ("faceforensics", "celebdf", "celeba", "affectnet", "folder")


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not a fraction in [0, 1)")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def _positive(text: str) -> int:
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be at least 1")
    return value


def _count(text: str) -> int:
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} must be 0 or more")
    return value


def _margin(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and value >= 0.0):
        raise argparse.ArgumentTypeError(f"{text} must be a finite number of 0 or more")
    return value


def _names(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line (``error: ...``), exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The CLI: one sub-command per raw layout."""
    parser = _Parser(
        prog="python -m lssat.data.prepare",
        description="Prepare a face dataset into memory-mapped shards (resumable).",
    )
    sub = parser.add_subparsers(
        dest="dataset", required=True, metavar="{" + ",".join(DATASETS) + "}"
    )

    def common(p: argparse.ArgumentParser, image: bool = True) -> None:
        p.add_argument("--root", type=Path, required=True, help="the raw dataset folder")
        p.add_argument("--out", type=Path, required=True, help="the prepared output folder")
        p.add_argument("--size", type=_positive, default=224, help="face crop side in px (224)")
        p.add_argument(
            "--limit",
            type=_count,
            default=0,
            help="at most N items (whole videos where there are videos) per split, stratified "
            "by label so every class is kept (0 = all)",
        )
        p.add_argument(
            "--workers", type=_count, default=0, help="decoding processes (0 = in-process)"
        )
        p.add_argument(
            "--overwrite", action="store_true", help="discard an earlier prepare in --out"
        )
        p.add_argument("--quiet", action="store_true", help="no progress bar")
        p.add_argument(
            "--margin",
            type=_margin,
            default=0.2,
            help="crop margin around a face box, as a fraction of its side (0.2)",
        )
        p.add_argument(
            "--boxes",
            type=Path,
            default=None,
            help="CSV path,frame,x,y,w,h of face boxes (instead of detection)",
        )
        if image:
            p.add_argument(
                "--detect",
                action="store_true",
                help="detect the largest face (Haar) instead of using aligned images",
            )

    ff = sub.add_parser("faceforensics", help="FaceForensics++ videos (deepfake)")
    common(ff, image=False)
    ff.add_argument("--compression", default="c23", help="raw, c23 or c40 (c23)")
    ff.add_argument(
        "--methods",
        type=_names,
        default=None,
        help="comma list (Deepfakes,Face2Face,FaceSwap,NeuralTextures)",
    )
    ff.add_argument("--originals", type=_names, default=None, help="comma list (youtube)")
    ff.add_argument("--frames", type=_positive, default=32, help="frames per video (32)")
    ff.add_argument(
        "--splits",
        type=Path,
        default=None,
        help="folder with train.json/val.json/test.json (default ROOT/splits or ROOT)",
    )

    cd = sub.add_parser("celebdf", help="Celeb-DF-v2 videos, a test-only deepfake set")
    common(cd, image=False)
    cd.add_argument("--frames", type=_positive, default=32, help="frames per video (32)")
    cd.add_argument(
        "--all",
        action="store_true",
        help="every video as the test set (default: List_of_testing_videos.txt only)",
    )

    common(sub.add_parser("celeba", help="CelebA aligned images, 40 attributes"))

    an = sub.add_parser("affectnet", help="AffectNet expressions (raw or class folders)")
    common(an)
    an.add_argument(
        "--classes",
        type=int,
        default=8,
        choices=(7, 8),
        help="8 (0 Neutral .. 7 Contempt) or 7 (without Contempt)",
    )
    an.add_argument(
        "--val-fraction",
        type=_fraction,
        default=0.1,
        help="share of the training images, stratified by class, that becomes the val split "
        "(0.1); the official val_set is the test split; 0 validates on the test split",
    )

    fo = sub.add_parser("folder", help="class_name/*.jpg tree or a CSV path,label[,split][,group]")
    common(fo)
    fo.add_argument(
        "--csv", type=Path, default=None, help="label CSV (relative to --root or absolute)"
    )
    fo.add_argument(
        "--groups",
        type=_names,
        default=None,
        help="CSV columns holding demographic groups (default: a 'group' column)",
    )
    fo.add_argument(
        "--task",
        default="classify",
        choices=("classify", "deepfake"),
        help="classify (default) or deepfake (classes real and fake)",
    )
    fo.add_argument(
        "--video-from",
        choices=("parent", "none"),
        default=None,
        help="parent: the images of one sub-folder are the frames of one video, kept in one "
        "split (default for --task deepfake); none: images one by one (default for classify)",
    )
    fo.add_argument(
        "--val-fraction",
        type=_fraction,
        default=0.1,
        help="val share by path hash where the data gives no split (0.1)",
    )
    fo.add_argument(
        "--test-fraction",
        type=_fraction,
        default=0.1,
        help="test share by path hash where the data gives no split (0.1)",
    )
    return parser


def make_source(args: argparse.Namespace):  # -> Source
    """The source object for parsed arguments."""
    face = {"margin": args.margin, "boxes": args.boxes}
    common = {"size": args.size, "limit": args.limit}
    if args.dataset == "faceforensics":
        from lssat.data.sources.faceforensics import FaceForensicsSource

        return FaceForensicsSource(
            args.root, **common, compression=args.compression, methods=args.methods,
            originals=args.originals, frames=args.frames, splits=args.splits, **face,
        )  # fmt: skip
    if args.dataset == "celebdf":
        from lssat.data.sources.celebdf import CelebDFSource

        return CelebDFSource(args.root, **common, frames=args.frames, all_videos=args.all, **face)
    face["detect"] = args.detect
    if args.dataset == "celeba":
        from lssat.data.sources.celeba import CelebASource

        return CelebASource(args.root, **common, **face)
    if args.dataset == "affectnet":
        from lssat.data.sources.affectnet import AffectNetSource

        return AffectNetSource(
            args.root, **common, num_classes=args.classes, val_fraction=args.val_fraction, **face
        )
    from lssat.data.sources.folder import FolderSource

    return FolderSource(
        args.root, **common, csv_file=args.csv, group_cols=args.groups, task=args.task,
        val_fraction=args.val_fraction, test_fraction=args.test_fraction,
        video_from=args.video_from, **face,
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (2 for bad input, 130 when interrupted)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse has printed its one-line usage error
        return int(exc.code or 0)
    from lssat.data.pipeline import prepare

    try:
        source = make_source(args)
        meta = prepare(
            source, args.out, workers=args.workers, progress=not args.quiet,
            overwrite=args.overwrite,
        )  # fmt: skip
    except LssatError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"interrupted; run the same command again to resume into {args.out}", file=sys.stderr)
        return 130
    counts = ", ".join(f"{s} {c['rows']}" for s, c in meta["counts"].items() if c["rows"])
    sk = meta["skipped"]
    print(
        f"prepared {meta['rows']} faces ({counts}) of task {meta['task']!r} into {args.out}; "
        f"skipped {sk['items']} items and {sk['frames']} frames, excluded "
        f"{meta['excluded']['items']} (reasons in {args.out / 'meta.json'})"
    )
    for w in meta["warnings"]:
        print(f"warning: {w}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
