"""Errors with one clear sentence each; CLIs turn them into exit code 2."""

from collections.abc import Iterator


def causes(exc: BaseException | None, *, context: bool = False) -> Iterator[BaseException]:
    """``exc``, then what it wraps: Ray's ``.cause``, else ``__cause__`` (and, with
    ``context``, ``__context__``), each once."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        nxt = getattr(exc, "cause", None)
        if not isinstance(nxt, BaseException):
            nxt = exc.__cause__ or (exc.__context__ if context else None)
        exc = nxt


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
