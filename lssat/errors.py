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
    """Training produced a NaN/inf loss (a trial's stop reason ``non_finite_loss``).

    Carries ``step`` (1-based global step), ``parts`` (loss name -> float) and ``epoch``
    (1-based; None when unknown) for the trial record.
    """

    def __init__(self, step: int, parts: dict[str, float], epoch: int | None = None):
        self.step = step
        self.parts = dict(parts)
        self.epoch = epoch
        shown = ", ".join(f"{k}={v:.4g}" for k, v in self.parts.items())
        at = f"epoch {epoch}, step {step}" if epoch is not None else f"step {step}"
        super().__init__(f"non-finite loss at {at} ({shown})")

    def __reduce__(self):  # survives pickling between Ray processes
        return (type(self), (self.step, self.parts, self.epoch))


class NonFiniteLogitsError(NonFiniteLossError):
    """Evaluation produced NaN/inf logits (or loss): ``bad`` of ``rows`` rows of ``split``
    after ``epoch``. A :class:`NonFiniteLossError`, so a trial stops with the same reason."""

    def __init__(self, epoch: int | None, split: str, bad: int, rows: int):
        self.step, self.parts, self.epoch = 0, {}, epoch
        self.split, self.bad, self.rows = split, bad, rows
        at = f" at epoch {epoch}" if epoch is not None else ""
        LssatError.__init__(
            self, f"non-finite logits{at} ({bad} of {rows} {split} rows); nothing is scored"
        )

    def __reduce__(self):
        return (type(self), (self.epoch, self.split, self.bad, self.rows))


class ResultsWriteError(LssatError):
    """The results folder refused a write mid-search (full disk, quota, read-only): the search
    stopped; what had finished is kept and ``--resume`` continues once the disk is fixed."""
