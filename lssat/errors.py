"""Errors with one clear sentence each; CLIs turn them into exit code 2."""


class LssatError(Exception):
    """Base class: the message is one sentence naming the culprit."""


class ConfigError(LssatError, ValueError):
    """A config field has a wrong name, type or value."""


class DataError(LssatError):
    """A dataset is missing, malformed or corrupt."""


class NonFiniteLossError(LssatError, RuntimeError):
    """Training produced a NaN/inf loss.

    Carries ``step`` and ``parts`` (loss name -> float) for the trial record.
    """

    def __init__(self, step: int, parts: dict[str, float]):
        self.step = step
        self.parts = dict(parts)
        shown = ", ".join(f"{k}={v:.4g}" for k, v in self.parts.items())
        super().__init__(f"non-finite loss at step {step} ({shown})")

    def __reduce__(self):  # survives pickling between Ray processes
        return (type(self), (self.step, self.parts))


class ResultsWriteError(LssatError):
    """The results folder refused a write mid-search (full disk, quota, read-only): the search
    stopped; what had finished is kept and ``--resume`` continues once the disk is fixed."""
