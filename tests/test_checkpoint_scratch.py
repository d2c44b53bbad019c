"""Issue 24, item 7: checkpoint scratch folders are claimed by an OS lock, not a PID, so a
sweep from another PID namespace sharing the temp folder never deletes a live one; a
killed owner's folder is swept; a writer failure is one sentence."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest
from tune_events import Events, dataset

from lssat.errors import LssatError
from search import results

ROOT = Path(__file__).resolve().parents[1]
HOLD = "import sys, time; from lssat.scratch import scratch_dir; " \
       "print(scratch_dir(sys.argv[1]), flush=True); time.sleep(120)"  # fmt: skip
SWEEP = "import sys; from lssat.scratch import sweep_scratch; sweep_scratch(sys.argv[1])"


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def _own_pid_namespace() -> bool:
    if shutil.which("unshare") is None:
        return False
    ok = subprocess.run(["unshare", "-p", "-f", "true"], capture_output=True)
    return ok.returncode == 0


@pytest.mark.skipif(not _own_pid_namespace(), reason="needs `unshare -p` (a PID namespace)")
def test_a_sweep_from_another_pid_namespace_keeps_a_live_folder(tmp_path: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], env=_env(),
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        live = Path(holder.stdout.readline().strip())
        (live / "state.pt").write_bytes(b"x" * 100)
        # another PID namespace (a container sharing /tmp): the holder's PID means nothing there
        subprocess.run(["unshare", "-p", "-f", sys.executable, "-c", SWEEP, str(tmp_path)],
                       env=_env(), check=True)  # fmt: skip
        assert (live / "state.pt").is_file(), "a live trial's checkpoint folder was swept"
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # its owner is dead now: the next checkpoint's sweep takes the folder
    from lssat.checkpoint import release_scratch, scratch_dir

    mine = scratch_dir(tmp_path)
    assert not live.exists() and Path(mine).is_dir()
    release_scratch(mine)
    assert list(tmp_path.iterdir()) == []


def test_a_checkpoint_that_cannot_be_written_is_one_sentence(tmp_path: Path) -> None:
    from lssat.checkpoint import save_checkpoint

    with pytest.raises(LssatError) as err:
        save_checkpoint(tmp_path / "c", {"model": lambda x: x})  # torch.save cannot pickle it
    assert str(tmp_path / "c") in str(err.value) and "\n" not in str(err.value)


def test_a_results_write_failing_with_any_error_stops_in_one_sentence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kw: object) -> None:
        raise pa.ArrowInvalid("Invalid: cannot write this column\nsecond line")

    ev = Events(tmp_path / "deepfake" / "w", dataset(tmp_path / "data"), trials=1)
    monkeypatch.setattr(results, "write_trial", refuse)
    t = ev.trial("t0", 0, epochs=1)
    ev.result(t, 1, val_auc=0.6)
    ev.complete(t)  # the row cannot be written: the search stops, nothing raised into Tune
    ev.close()
    why = ev.recorder.stopped
    assert why is not None and "ArrowInvalid" in why and "\n" not in why
