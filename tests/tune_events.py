"""Drive the driver-side Recorder with Ray Tune's own ``Trial`` objects and events, in the
order Tune's controller sends them, without a Ray cluster: what happens *between* two events
(a node dying after a result and before its checkpoint is registered) cannot be timed in a real
run, but it can be stepped through here. ``Trial.on_checkpoint`` is Tune's own registration:
``trial.checkpoint`` is then what Tune would restore the trial from after a crash."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ray.train._internal.session import _TrainingResult
from ray.train._internal.storage import StorageContext
from ray.tune import Checkpoint
from ray.tune.experiment import Trial
from ray.tune.registry import register_trainable

from search.execution.errors import ERROR_KEY, REASON_KEY
from search.execution.recorder import Recorder
from search.optimize.searcher import CONFIG_KEY, META_KEY
from search.optimize.study import StudyRef

CONFIG = {"backbone": "resnet18", "epochs": 2, "lr": 1e-3, "img_size": 32, "pretrained": False}


def dataset(folder: Path, groups: dict[str, list[str]] | None = None) -> Path:
    """A prepared-dataset stand-in: only ``meta.json`` (what the driver reads of it)."""
    folder.mkdir(parents=True, exist_ok=True)
    groups = groups or {}
    meta = {"task": "deepfake", "label_kind": "binary", "classes": ["real", "fake"],
            "groups": list(groups), "group_values": groups}  # fmt: skip
    (folder / "meta.json").write_text(json.dumps(meta))
    return folder


def _noop(config: dict) -> None:
    """The trainable name Tune's ``Trial`` checks exists; never run here."""


class Events:
    """One Recorder on ``exp`` and the Tune trials it sees."""

    def __init__(self, exp: Path, data: Path, trials: int = 2) -> None:
        self.exp, self.data = exp, data
        register_trainable("train_trial", _noop)  # again: a Ray session ending clears it
        self.ref = StudyRef(str(exp), "events", "max", None, metric="val_auc")
        for _ in range(trials):
            self.ref.study.ask()
        self.recorder = Recorder(
            exp, task="deepfake", experiment=exp.name, metric="val_auc", mode="max",
            ref=self.ref, budget=trials, finished_before=0,
            provenance={"versions": {}, "git_commit": "test"},
        )  # fmt: skip
        self.trials: list[Trial] = []

    def trial(self, trial_id: str, number: int, **config: Any) -> Trial:
        storage = StorageContext(
            storage_path=str(self.exp / "ray"), experiment_dir_name="session-0",
            trial_dir_name=trial_id,
        )  # fmt: skip
        meta = {"number": number, "trial_id": trial_id, "params": {}, "data": str(self.data),
                "tb_dir": str(self.exp / "tensorboard" / trial_id), "session": 0}  # fmt: skip
        cfg = {**CONFIG, **config}
        t = Trial("train_trial", config={CONFIG_KEY: cfg, META_KEY: meta}, trial_id=trial_id,
                  storage=storage)  # fmt: skip
        self.trials.append(t)
        self.recorder.on_trial_start(0, self.trials, t)
        return t

    def result(self, t: Trial, epoch: int, checkpoint: bool = False, **metrics: Any) -> str | None:
        """One epoch's result (with its checkpoint folder on disk when ``checkpoint``); returns
        the checkpoint path. Tune has *not* registered the checkpoint yet (see :meth:`saved`)."""
        result: dict[str, Any] = {"epoch": epoch, "training_iteration": epoch, **metrics}
        path = None
        if checkpoint:
            name = f"checkpoint_{epoch - 1:06d}"
            path = str(Path(t.path) / name)
            Path(path).mkdir(parents=True)
            (Path(path) / "state.pt").write_bytes(b"x")
            result["checkpoint_dir_name"] = name
        self.recorder.on_trial_result(0, self.trials, t, result)
        return path

    def saved(self, t: Trial, path: str, epoch: int) -> None:
        """Tune registers ``path`` as the trial's checkpoint, then calls the save hooks (what
        its controller does once the trial's asynchronous save is processed)."""
        ckpt = Checkpoint(path)
        self.recorder.on_checkpoint(0, self.trials, t, checkpoint=ckpt)
        t.on_checkpoint(_TrainingResult(checkpoint=ckpt, metrics={"training_iteration": epoch}))
        self.recorder.on_trial_save(0, self.trials, t)

    def own_error(self, t: Trial, text: str) -> None:
        self.recorder.on_trial_result(0, self.trials, t, {ERROR_KEY: text, REASON_KEY: "error"})

    def complete(self, t: Trial) -> None:
        self.recorder.on_trial_complete(0, self.trials, t)

    def close(self) -> None:
        self.recorder.close()
