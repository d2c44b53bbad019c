"""Which prepared directory a trial trains on: the given one (checked) or the demo."""

from __future__ import annotations

from pathlib import Path

from lssat.data.shards import META_FILE, read_json
from lssat.errors import DataError

PREPARE_HINTS = {
    "deepfake": "python -m lssat.data.prepare faceforensics --root /path/to/FaceForensics++ "
    "--out data/ff++",
    "attributes": "python -m lssat.data.prepare celeba --root /path/to/celeba --out data/celeba",
    "emotion": "python -m lssat.data.prepare affectnet --root /path/to/affectnet "
    "--out data/affectnet",
    "classify": "python -m lssat.data.prepare folder --root /path/to/images --out data/faces",
}


def prepare_hint(task: str) -> str:
    """The prepare command that makes data for ``task``."""
    return PREPARE_HINTS.get(task, PREPARE_HINTS["classify"])


DEMO_PREFIX = "demo:"


def resolve_data(data: str | Path | None, task: str) -> Path:
    """A prepared directory for ``task``: ``data`` after checking it, ``demo:NAME`` for an
    embedded demo (``lssat.data.demo.DEMOS``), or for ``None`` the embedded deepfake demo
    (other tasks get a DataError naming the prepare command)."""
    if isinstance(data, str) and data.startswith(DEMO_PREFIX):
        from lssat.data.demo import demo_dataset, demo_task

        name = data[len(DEMO_PREFIX) :]
        if demo_task(name) != task:
            raise DataError(
                f"data {data!r} is a {demo_task(name)!r} demo, but the config asks for task "
                f"{task!r}"
            )
        return demo_dataset(name=name)
    if data is None or str(data) == "":
        if task == "deepfake":
            from lssat.data.demo import demo_dataset

            return demo_dataset()
        raise DataError(
            f"task {task!r} has no built-in demo data; prepare a dataset first with "
            f"`{prepare_hint(task)}` and pass that folder as the data path"
            + (" (or an embedded demo: demo:faces, demo:digits)" if task == "classify" else "")
        )
    path = Path(data).expanduser()
    if not path.is_dir():
        raise DataError(f"data path {path} does not exist; prepare it with `{prepare_hint(task)}`")
    if not (path / META_FILE).is_file():
        raise DataError(
            f"data path {path} is not a prepared dataset (no {META_FILE}); prepare it with "
            f"`{prepare_hint(task)}`, or finish an interrupted prepare by running it again"
        )
    meta = read_json(path / META_FILE, "dataset meta file")
    if meta.get("task") != task:
        raise DataError(
            f"data path {path} holds task {meta.get('task')!r}, but the config asks for "
            f"task {task!r}"
        )
    return path

