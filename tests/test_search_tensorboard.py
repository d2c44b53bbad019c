"""HParams records read back with TensorBoard's own event reader; error classification."""

from __future__ import annotations

from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import api_pb2, metadata

from lssat.errors import NonFiniteLossError
from search.results.tensorboard import write_trial_hparams


def test_hparams_session_and_metrics_are_readable(tmp_path: Path) -> None:
    run = tmp_path / "tensorboard" / "abc_00001"
    write_trial_hparams(
        run,
        {"backbone": "resnet18", "lr": 0.001, "pretrained": False, "status": "PRUNED"},
        {"final_val_auc": 0.61, "best_val_auc": 0.65, "skipped": None},
        "PRUNED",
        step=2,
    )
    ea = EventAccumulator(str(run))
    ea.Reload()
    content = ea.PluginTagToContent(metadata.PLUGIN_NAME)
    start = metadata.parse_session_start_info_plugin_data(content[metadata.SESSION_START_INFO_TAG])
    assert start.hparams["backbone"].string_value == "resnet18"
    assert start.hparams["lr"].number_value == 0.001
    assert start.hparams["pretrained"].bool_value is False
    end = metadata.parse_session_end_info_plugin_data(content[metadata.SESSION_END_INFO_TAG])
    assert end.status == api_pb2.Status.STATUS_SUCCESS
    assert [e.value for e in ea.Scalars("search/best_val_auc")] == [pytest.approx(0.65)]
    assert ea.Scalars("search/final_val_auc")[0].step == 2
    assert "search/skipped" not in ea.Tags()["scalars"]


def test_errors_are_classified_through_ray_wrappers() -> None:
    from search.execution.recorder import classify_error

    class Wrapped(Exception):  # stands in for ray.exceptions.RayTaskError
        def __init__(self, cause: BaseException):
            super().__init__("wrapped")
            self.cause = cause

    nan = NonFiniteLossError(3, {"loss": float("nan")})
    assert classify_error(Wrapped(nan), "wrapped") == "non_finite_loss"
    assert classify_error(None, "torch.OutOfMemoryError: CUDA out of memory") == "out_of_memory"
    assert classify_error(ValueError("x"), "ValueError: x") == "error"


def test_error_text_reads_the_trials_local_error_file(tmp_path: Path) -> None:
    import ray.cloudpickle as cloudpickle

    from search.execution.recorder import classify_error, error_text

    class Wrapped(Exception):
        def __init__(self, cause: BaseException):
            super().__init__("ray wrapper with a long traceback")
            self.cause = cause

    class FakeTrial:
        pickled_error_file = str(tmp_path / "error.pkl")
        error_file = str(tmp_path / "error.txt")

        def get_pickled_error(self) -> None:  # storage copy not synced yet
            return None

        def get_error(self) -> None:
            return None

    from search.execution.trainable import TrialFailed, _portable

    class Unpicklable(NonFiniteLossError):  # an error whose __init__ pickling cannot replay
        def __reduce__(self):
            return (type(self), ())

    nan = Unpicklable(7, {"loss": float("inf")})
    sent = _portable(nan)  # sent across processes as TrialFailed, keeping the class name
    assert isinstance(sent, TrialFailed) and sent.kind == "Unpicklable"
    assert classify_error(Wrapped(sent), "x") == "error"
    plain = NonFiniteLossError(7, {"loss": float("inf")})
    assert _portable(plain) is plain
    (tmp_path / "error.pkl").write_bytes(cloudpickle.dumps(Wrapped(plain)))
    assert error_text(FakeTrial()) == (
        "NonFiniteLossError: non-finite loss at step 7 (loss=inf)",
        "non_finite_loss",
    )
    (tmp_path / "error.pkl").unlink()
    (tmp_path / "error.txt").write_text("Traceback ...\n  File x\nValueError: bad batch\n")
    assert error_text(FakeTrial()) == ("ValueError: bad batch", "error")
