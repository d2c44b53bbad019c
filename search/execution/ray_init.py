"""Start a local Ray bound to 127.0.0.1, or join a cluster, with Tune's output kept quiet."""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from typing import Any

from lssat.errors import ConfigError


@dataclass(frozen=True)
class RayOptions:
    """Where and how to run Ray: ``address`` None = a local Ray on 127.0.0.1, 'auto' or
    ray://HOST:PORT = join a cluster; ``verbose`` shows Ray's and the workers' logs."""

    address: str | None = None
    verbose: bool = False
    dashboard: bool = True

    @property
    def local(self) -> bool:
        return self.address is None


def ray_init(opts: RayOptions) -> Any:
    """Join ``opts.address`` or start a local Ray whose servers all listen on 127.0.0.1."""
    if opts.address is None:
        # Read by Ray when it is imported: a local node then binds every server (GCS, raylet,
        # object manager, dashboard agent) to the loopback address instead of the host's IP.
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # a reused actor waits this long for the previous trial's thread to end; Ray's 2 s default
    # runs out on a loaded machine, and the next trial then errors before it starts (the
    # Recorder never sees it): read by the trial actors, which inherit this environment
    os.environ.setdefault("TUNE_FUNCTION_THREAD_TIMEOUT_S", "120")
    os.environ["TUNE_DISABLE_STRICT_METRIC_CHECKING"] = "1"  # a missing metric is a FAIL
    # our Recorder writes the results and the TensorBoard runs: no CSV/JSON/TBX copies from Ray
    os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = "1"
    # Tune's own progress tables stay quiet (the Recorder prints one line per event) unless
    # --verbose
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "1" if opts.verbose else "0")
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    # a failed trial is one Recorder line (its traceback stays in the trial folder's error.txt)
    os.environ.setdefault("TUNE_PRINT_ALL_TRIAL_ERRORS", "1" if opts.verbose else "0")
    import ray

    if ray.is_initialized():  # the caller started Ray (search.demo) and will shut it down
        return ray
    level = logging.INFO if opts.verbose else logging.WARNING
    kwargs: dict[str, Any] = {"logging_level": level, "log_to_driver": bool(opts.verbose)}
    if opts.address is None:
        ray.init(
            include_dashboard=opts.dashboard,
            dashboard_host="127.0.0.1",
            _node_ip_address="127.0.0.1",
            **kwargs,
        )
    else:
        try:
            ray.init(address=opts.address, **kwargs)
        except Exception as exc:  # ConnectionError, ValueError, RuntimeError, gRPC errors
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ConfigError(
                f"--address {opts.address!r}: cannot join a Ray cluster ({first})"
            ) from exc
    if not opts.verbose:  # Tune looks for its own result files, which the Recorder replaces
        logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
        # a state snapshot that cannot be written (full disk): one line, not a traceback
        logging.getLogger("ray.tune.execution.experiment_state").addFilter(_one_line)
    return ray


def ray_connected() -> bool:
    """True when this process is already connected to Ray (without importing Ray)."""
    ray = sys.modules.get("ray")
    return bool(ray is not None and ray.is_initialized())


def _one_line(record: logging.LogRecord) -> bool:
    """Logging filter: keep the record, drop its traceback, append the exception's last line."""
    if record.exc_info and record.exc_info[1] is not None:
        exc = record.exc_info[1]
        record.msg = f"{record.getMessage()} {type(exc).__name__}: {exc}"
        record.args, record.exc_info, record.exc_text = None, None, None
    return True
