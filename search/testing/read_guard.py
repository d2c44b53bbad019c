"""TEST-ONLY stand-in for ``lssat.train.run_trial`` that records every row a trial reads.

Set ``LSSAT_TRIAL_FN=search.testing.read_guard:recording_trial`` and
``LSSAT_TRIAL_FN_ARGS={"log_dir": DIR}`` (see :mod:`search.testing.faults`): each trial (search or
final stage) then runs the real ``run_trial`` on ``load_trial_data``'s sets while every image
read of any prepared dataset in its process is recorded, and writes ``DIR/<uuid>.json`` with
its seed, whether it was a final run, its validation rows and the rows it read. Never set it
for a real search.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import numpy as np

_READS: dict[str, set[int]] = {}


def _install() -> None:
    """Wrap ``PreparedDataset.image``/``images`` once per process to record row reads."""
    from lssat.data.shards import PreparedDataset

    if getattr(PreparedDataset, "_read_guard", False):
        return
    image, images = PreparedDataset.image, PreparedDataset.images

    def rec_image(self: Any, i: int) -> Any:
        _READS.setdefault(str(self.path.resolve()), set()).add(int(i))
        return image(self, i)

    def rec_images(self: Any, idx: Any) -> Any:
        rows = np.asarray(idx, dtype=np.int64).reshape(-1).tolist()
        _READS.setdefault(str(self.path.resolve()), set()).update(rows)
        return images(self, idx)

    PreparedDataset.image = rec_image  # type: ignore[method-assign]
    PreparedDataset.images = rec_images  # type: ignore[method-assign]
    PreparedDataset._read_guard = True  # type: ignore[attr-defined]


def recording_trial(config: Any, data: Any, report: Any, *, log_dir: str, **kw: Any) -> Any:
    """``run_trial`` on ``load_trial_data(data, config)``, logging the rows it read."""
    from lssat.data import load_trial_data
    from lssat.train import run_trial

    _install()
    _READS.clear()
    td = load_trial_data(data, config)
    path = str(Path(td.extra["path"]).resolve())
    name = Path(log_dir, f"{uuid.uuid4().hex}.json")

    def write() -> None:
        log = {
            "seed": config.seed,
            "final": kw.get("final_eval") is not None,
            "val_rows": td.val.indices.tolist(),  # type: ignore[attr-defined]
            "val_set": td.extra.get("val_set"),
            "reads": sorted(_READS.get(path, set())),
        }
        name.write_text(json.dumps(log))

    def logged(metrics: Any, checkpoint: Any = None) -> Any:
        # the last epoch's log is written before Tune sees its report: Tune may end the
        # trial's process as soon as the last result arrives (the finally may never run)
        if int(metrics.get("epoch", 0)) >= int(config.epochs):
            write()
        return report(metrics, checkpoint)

    try:
        return run_trial(config, td, logged, **kw)
    finally:
        write()
