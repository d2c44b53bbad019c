"""A Ray Tune trainable that replays a table's curves for ``bench/scale.py``."""

from __future__ import annotations

from typing import Any

from search.replay.table import Table, key


# ------------------------------------------------------------- a trainable for bench/scale.py
def make_trainable(table: Table, scale: float, every: int = 1, kib: int = 0) -> Any:
    """A Tune function trainable (imports no torch) that plays back the table's curve of the
    configuration it is given, sleeping each recorded epoch time x ``scale``. Each report also
    carries ``replay_start`` / ``replay_report`` (wall clock) and ``replay_sleep_s``, so the
    driver's overhead can be measured from the epoch Parquet (see ``bench/scale.py``).
    ``kib`` > 0: like ``lssat.train.run_trial``, it also hands Tune a checkpoint folder (one
    file of ``kib`` KiB) every ``every`` epochs and at the last, so Tune's checkpoint handling
    and the Recorder's checkpoint clean-up run as in a real search."""
    curves = {k: (list(c.values), [t * scale for t in c.times]) for k, c in table.configs.items()}
    metric, epochs = table.metric, table.epochs
    blob = b"\0" * (kib * 1024)
    keys = sorted(curves)

    def _curve(params: dict[str, Any]) -> tuple[list[float], list[float]]:
        """The table's curve of these params, else one picked by a stable hash of them (a
        space larger than the table, e.g. bench/scale.py --space spaces/deepfake.yaml)."""
        k = key(params)
        if k in curves:
            return curves[k]
        import hashlib

        digest = int(hashlib.sha256(k.encode()).hexdigest()[:12], 16)
        return curves[keys[digest % len(keys)]]

    def replay_trial(config: dict[str, Any]) -> None:
        import shutil as _shutil
        import tempfile as _tempfile
        import time as _time

        from ray import tune

        from search.execution.trainable import placement
        from search.optimize.searcher import META_KEY

        start = _time.time()
        values, times = _curve(config[META_KEY]["params"])
        where = placement()
        for epoch, (value, seconds) in enumerate(zip(values, times, strict=True), start=1):
            _time.sleep(seconds)
            metrics = {"epoch": epoch, metric: value, "epoch_time_s": seconds,
                       "replay_start": start, "replay_report": _time.time(),
                       "replay_sleep_s": seconds, **where}  # fmt: skip
            if not blob or not (epoch == epochs or epoch % every == 0):
                tune.report(metrics)
                continue
            ckpt = _tempfile.mkdtemp(prefix="replay-ckpt-")
            try:
                with open(f"{ckpt}/model.bin", "wb") as fh:
                    fh.write(blob)
                tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(ckpt))
            finally:
                _shutil.rmtree(ckpt, ignore_errors=True)

    return replay_trial
