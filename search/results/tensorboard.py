"""TensorBoard HParams records for a search, so its HParams view compares trials.

``run_trial`` writes each trial's scalars and image grids into ``tensorboard/<trial_id>/``.
When a trial ends, the search adds to the same run a session-start record (the sampled
parameters), the final and best value of the task metric as ``search/...`` scalars, and a
session-end record (COMPLETE and PRUNED -> success, FAIL -> failure; TensorBoard has no
"stopped early" status, so the ``status`` hparam says COMPLETE / PRUNED / FAIL). No experiment
record is written: TensorBoard then builds the HParams table from every run it finds, so
``tensorboard --logdir results/`` compares trials across searches too.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tensorboard.compat.proto.event_pb2 import Event
from tensorboard.compat.proto.summary_pb2 import Summary
from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2, summary_v2
from tensorboard.summary.writer.event_file_writer import EventFileWriter

STATUS = {
    "COMPLETE": api_pb2.Status.STATUS_SUCCESS,
    "PRUNED": api_pb2.Status.STATUS_SUCCESS,  # ended without error; the status hparam tells
    "FAIL": api_pb2.Status.STATUS_FAILURE,
}


def session_start(hparams: Mapping[str, Any], group: str, start_time: float) -> Summary:
    """The session-start record of one trial, built by TensorBoard's own ``hparams_pb``
    (numbers, strings and booleans kept as they are, ``None`` dropped, anything else as text)."""
    values = {
        k: v if isinstance(v, bool | int | float | str) else str(v)
        for k, v in hparams.items()
        if v is not None
    }
    return summary_v2.hparams_pb(values, trial_id=group, start_time_secs=start_time)


def session_end(status: str, end_time: float) -> Summary:
    """The session-end record with the trial's status. TensorBoard's ``session_end_pb`` lives
    in its TensorFlow-only ``summary`` module, so this builds the same record with the plugin's
    ``metadata`` helper."""
    info = plugin_data_pb2.SessionEndInfo(status=STATUS[status], end_time_secs=end_time)
    data = plugin_data_pb2.HParamsPluginData(
        session_end_info=info, version=metadata.PLUGIN_DATA_VERSION
    )
    tag = metadata.SESSION_END_INFO_TAG
    return Summary(value=[Summary.Value(tag=tag, metadata=metadata.create_summary_metadata(data))])


def write_trial_hparams(
    run_dir: str | Path,
    hparams: Mapping[str, Any],
    metrics: Mapping[str, float | None],
    status: str,
    *,
    step: int = 0,
    start_time: float | None = None,
) -> None:
    """Append one trial's HParams session and ``search/<name>`` metric scalars to its run."""
    now = time.time()
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    writer = EventFileWriter(str(run_dir), filename_suffix=".hparams")
    try:
        start = session_start(hparams, Path(run_dir).name, start_time or now)
        writer.add_event(Event(wall_time=now, step=0, summary=start))
        for name, value in metrics.items():
            if value is not None and math.isfinite(value):
                scalar = Summary(value=[Summary.Value(tag=f"search/{name}", simple_value=value)])
                writer.add_event(Event(wall_time=now, step=step, summary=scalar))
        writer.add_event(Event(wall_time=now, step=step, summary=session_end(status, now)))
    finally:
        writer.close()
