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
from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2
from tensorboard.summary.writer.event_file_writer import EventFileWriter

STATUS = {
    "COMPLETE": api_pb2.Status.STATUS_SUCCESS,
    "PRUNED": api_pb2.Status.STATUS_SUCCESS,  # ended without error; the status hparam tells
    "FAIL": api_pb2.Status.STATUS_FAILURE,
}


def _summary(tag: str, data: plugin_data_pb2.HParamsPluginData) -> Summary:
    return Summary(value=[Summary.Value(tag=tag, metadata=metadata.create_summary_metadata(data))])


def session_start(hparams: Mapping[str, Any], group: str, start_time: float) -> Summary:
    """The session-start record of one trial (numbers, strings and booleans kept)."""
    info = plugin_data_pb2.SessionStartInfo(group_name=group, start_time_secs=start_time)
    for key, value in hparams.items():
        if isinstance(value, bool):
            info.hparams[key].bool_value = value
        elif isinstance(value, int | float):
            info.hparams[key].number_value = float(value)
        elif value is not None:
            info.hparams[key].string_value = str(value)
    data = plugin_data_pb2.HParamsPluginData(
        session_start_info=info, version=metadata.PLUGIN_DATA_VERSION
    )
    return _summary(metadata.SESSION_START_INFO_TAG, data)


def session_end(status: str, end_time: float) -> Summary:
    """The session-end record with the trial's status."""
    info = plugin_data_pb2.SessionEndInfo(status=STATUS[status], end_time_secs=end_time)
    data = plugin_data_pb2.HParamsPluginData(
        session_end_info=info, version=metadata.PLUGIN_DATA_VERSION
    )
    return _summary(metadata.SESSION_END_INFO_TAG, data)


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
