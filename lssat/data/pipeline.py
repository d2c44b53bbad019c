"""The prepare pipeline: source items -> face crops -> shards + meta.json, resumable.

Items are cut into fixed chunks (``source.chunk`` items each); chunk ``k`` becomes shard
``part-k`` written atomically, so a re-run after an interruption skips the shards already
written and produces byte-identical files to one uninterrupted run. ``prepare.json`` holds
the options and a digest of the item list; a re-run with other options or another item
list is refused (pass ``overwrite=True`` to start again).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from lssat.data.shards import (
    FORMAT,
    FORMAT_VERSION,
    META_FILE,
    SHARD_DIR,
    SPLITS,
    ChunkResult,
    Record,
    open_shard,
    read_json,
    shard_name,
    shard_notes,
    write_json,
    write_shard,
)
from lssat.data.sources.base import Exclude, Item, Source
from lssat.errors import DataError

FINGERPRINT_FILE = "prepare.json"
MAX_LISTED_SKIPS = 10000

_WORKER_SOURCE: Source | None = None


def _init_worker(source: Source) -> None:
    global _WORKER_SOURCE
    import cv2

    cv2.setNumThreads(1)
    _WORKER_SOURCE = source


def _work(item: Item) -> tuple[Item, Any]:
    assert _WORKER_SOURCE is not None
    return item, process_item(_WORKER_SOURCE, item)


def process_item(source: Source, item: Item) -> Any:
    """``Output`` of the item, or ``("skip" | "exclude", reason)``; never raises for bad data."""
    try:
        return source.process(item)
    except Exclude as exc:
        return ("exclude", str(exc))
    except DataError:
        raise
    except Exception as exc:  # a bad file must never stop a prepare: record why instead
        from lssat.data.faces import Skip

        reason = str(exc) if isinstance(exc, Skip) else f"{type(exc).__name__}: {exc}"
        return ("skip", reason)


def _collect(source: Source, results: list[tuple[Item, Any]]) -> ChunkResult:
    out = ChunkResult()
    for item, res in results:
        if isinstance(res, tuple):
            kind, reason = res
            entry = {"item": item.key, "reason": reason}
            (out.skipped if kind == "skip" else out.excluded).append(entry)
            continue
        # a video source's item is one video; an image source may group items into videos
        video = item.index if source.is_video else int(item.extra.get("video", -1))
        for suffix, image in res.frames:
            out.records.append(
                Record(image, res.label, item.split, item.key + suffix, video, item.groups)
            )
        for suffix, reason in res.skipped_frames:
            out.skipped_frames.append({"item": item.key + suffix, "reason": reason})
    return out


def fingerprint(source: Source, items: list[Item]) -> dict[str, Any]:
    """Options + digest of the item list; a resumed prepare must match it exactly."""
    digest = hashlib.sha1()
    for it in items:
        digest.update(f"{it.key}\0{it.split}\0{it.label}\0{it.groups}\n".encode())
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "dataset": source.name,
        "root": str(source.root) if source.root else None,
        "size": source.size,
        "chunk": source.chunk,
        "options": source.options(),
        "items": len(items),
        "items_sha1": digest.hexdigest(),
    }


def _check_out(out: Path, fp: dict[str, Any], overwrite: bool) -> None:
    """Refuse a foreign or differently prepared ``out``; create it and write the fingerprint.

    An ``out`` the OS refuses (a file in the way, no permission) is a DataError naming it.
    """
    try:
        _claim_out(out, fp, overwrite)
    except OSError as exc:
        raise DataError(
            f"output folder {out} (--out) cannot be used: {exc.strerror or exc}"
        ) from None


def _claim_out(out: Path, fp: dict[str, Any], overwrite: bool) -> None:
    fp_path = out / FINGERPRINT_FILE
    if overwrite:
        for name in (META_FILE, FINGERPRINT_FILE):
            (out / name).unlink(missing_ok=True)
        shutil.rmtree(out / SHARD_DIR, ignore_errors=True)
    if fp_path.exists():
        old = read_json(fp_path, "prepare fingerprint")
        if old != fp:
            diff = sorted(k for k in set(old) | set(fp) if old.get(k) != fp.get(k))
            detail = diff[0]
            if detail == "options":
                o, n = old.get("options", {}), fp["options"]
                detail = next(k for k in sorted(set(o) | set(n)) if o.get(k) != n.get(k))
                detail = f"option {detail!r}: {o.get(detail)!r} before, {n.get(detail)!r} now"
            else:
                detail = f"{detail!r}: {old.get(detail)!r} before, {fp.get(detail)!r} now"
            raise DataError(
                f"output folder {out} holds a prepare with other settings ({detail}); "
                "choose a new --out or pass --overwrite"
            )
    elif out.exists() and any(out.iterdir()):
        raise DataError(
            f"output folder {out} is not empty and holds no {FINGERPRINT_FILE}; "
            "choose an empty or new folder"
        )
    out.mkdir(parents=True, exist_ok=True)
    write_json(fp_path, fp)


def _shard_done(path: Path) -> bool:
    if not path.exists():
        return False
    try:
        open_shard(path)
        return True
    except DataError:
        path.unlink()
        return False


def prepare(
    source: Source,
    out: str | Path,
    *,
    workers: int = 0,
    progress: bool = True,
    overwrite: bool = False,
    on_chunk: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Prepare ``source`` into ``out``; returns the meta dict (also written as meta.json).

    ``workers`` > 0 decodes in that many processes (results keep the item order);
    ``on_chunk(k)`` is called after shard ``k`` is written (tests interrupt from there).
    """
    from tqdm import tqdm

    out = Path(out)
    items = source.items()
    if not items:
        raise DataError(f"dataset root {source.root} holds no usable items")
    fp = fingerprint(source, items)
    _check_out(out, fp, overwrite)
    for stale in (out / SHARD_DIR).glob("*.tmp") if (out / SHARD_DIR).exists() else []:
        stale.unlink()
    chunks = [items[i : i + source.chunk] for i in range(0, len(items), source.chunk)]
    done = [_shard_done(out / shard_name(k)) for k in range(len(chunks))]
    n_labels = len(source.classes) if source.label_kind == "multilabel" else 0
    bar = tqdm(
        total=len(items),
        initial=sum(len(c) for c, d in zip(chunks, done, strict=True) if d),
        unit="video" if source.is_video else "img",
        desc=f"prepare {source.name}",
        disable=not progress,
        file=sys.stderr,
        dynamic_ncols=True,
    )
    counts: Counter[str] = Counter()
    pool = None
    try:
        if workers > 0 and not all(done):
            pool = ProcessPoolExecutor(
                workers, mp_context=get_context("spawn"), initializer=_init_worker,
                initargs=(source,),
            )  # fmt: skip
        for k, chunk in enumerate(chunks):
            if done[k]:
                continue
            if pool is not None:
                results = []
                for pair in pool.map(_work, chunk):
                    results.append(pair)
                    bar.update(1)
            else:
                results = []
                for it in chunk:
                    results.append((it, process_item(source, it)))
                    bar.update(1)
            result = _collect(source, results)
            write_shard(out / shard_name(k), result, source.size, n_labels, len(source.groups))
            counts["rows"] += len(result.records)
            counts["skipped"] += len(result.skipped)
            counts["excluded"] += len(result.excluded)
            counts["bad frames"] += len(result.skipped_frames)
            bar.set_postfix({k: v for k, v in counts.items() if v}, refresh=False)
            if on_chunk is not None:
                on_chunk(k)
    finally:
        bar.close()
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    meta = build_meta(source, out, [shard_name(k) for k in range(len(chunks))], fp)
    write_json(out / META_FILE, meta)
    return meta


def build_meta(source: Source, out: Path, shards: list[str], fp: dict[str, Any]) -> dict[str, Any]:
    """Counts per split and class, skipped items with reasons, from the written shards."""
    rows = {s: 0 for s in SPLITS}
    per_class = {s: np.zeros(len(source.classes), np.int64) for s in SPLITS}
    videos: dict[str, set[int]] = {s: set() for s in SPLITS}
    skipped: list[dict[str, str]] = []
    excluded: Counter[str] = Counter()
    frames: Counter[str] = Counter()
    for rel in shards:
        table = open_shard(out / rel)
        notes = shard_notes(table)
        skipped += notes.get("skipped", [])
        excluded.update(e["reason"] for e in notes.get("excluded", []))
        frames.update(e["reason"] for e in notes.get("skipped_frames", []))
        split = table.column("split").to_numpy()
        label = table.column("label").combine_chunks()
        video = table.column("video").to_numpy()
        for i, name in enumerate(SPLITS):
            sel = split == i
            rows[name] += int(sel.sum())
            videos[name].update(int(v) for v in np.unique(video[sel]) if v >= 0)
            if source.label_kind == "multilabel":
                flat = label.flatten().to_numpy().reshape(-1, len(source.classes))
                per_class[name] += flat[sel].sum(axis=0).astype(np.int64)
            else:
                lab = label.to_numpy()[sel]
                per_class[name] += np.bincount(lab, minlength=len(source.classes))[
                    : len(source.classes)
                ]
    counts = {}
    for name in SPLITS:
        entry: dict[str, Any] = {
            "rows": rows[name],
            "per_class": dict(zip(source.classes, map(int, per_class[name]), strict=True)),
        }
        if source.is_video or any(videos.values()):
            entry["videos"] = len(videos[name])
        counts[name] = entry
    total = sum(rows.values())
    if total == 0:
        reasons = Counter(s["reason"] for s in skipped).most_common(3)
        raise DataError(
            f"no usable face came out of {source.root}: "
            + (", ".join(f"{n} x {r!r}" for r, n in reasons) or "every item was excluded")
        )
    val_split = "val" if rows["val"] else ("test" if rows["test"] else None)
    warnings = list(source.warnings)
    if source.evaluation_only:
        pass  # a test-only set is for evaluation, never for training or selection
    elif val_split == "test":
        warnings.append("no val split: training uses the test split for validation")
    elif val_split is None:
        warnings.append("no val or test split: training has nothing to validate on")
    meta: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "task": source.task,
        "label_kind": source.label_kind,
        "classes": list(source.classes),
        "groups": list(source.groups),
        "group_values": dict(source.group_values),
        "size": source.size,
        "channels": source.channels,
        "splits": list(SPLITS),
        "val_split": val_split,
        "val_is_test": val_split == "test",
        "evaluation_only": source.evaluation_only,
        "split_roles": split_roles(source, rows, val_split),
        "rows": total,
        "counts": counts,
        "skipped": {
            "items": len(skipped),
            "frames": sum(frames.values()),
            "by_reason": dict(sorted(Counter(s["reason"] for s in skipped).items())),
            "frames_by_reason": dict(sorted(frames.items())),
            "list": skipped[:MAX_LISTED_SKIPS],
        },
        "excluded": {"items": sum(excluded.values()), "by_reason": dict(sorted(excluded.items()))},
        "shards": shards,
        "source": {
            "dataset": source.name,
            "root": fp["root"],
            "options": fp["options"],
            "items": fp["items"],
        },
        "warnings": warnings,
        **source.meta_extra(),
    }
    json.dumps(meta)  # fail here, not half-way through writing, if a value is not JSON-able
    return meta


def split_roles(source: Source, rows: dict[str, int], val_split: str | None) -> dict[str, str]:
    """meta.json ``split_roles``: for each non-empty split, where it comes from and its use."""
    given = source.split_roles()
    use = {
        "train": "trains the model",
        "val": "selects (validation of every search trial)",
        "test": "reports (held out: the final stage only)",
    }
    if source.evaluation_only:
        use["test"] = "reports (an evaluation-only set: never trained or selected on)"
    elif val_split == "test":
        use["test"] = "selects AND reports (no val split: validation runs on the test split)"
    return {s: f"{given[s]}; {use[s]}" if s in given else use[s] for s in SPLITS if rows[s]}
