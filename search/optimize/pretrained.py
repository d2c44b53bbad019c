"""Which backbones a space loads pretrained weights for, and where they come from: the
``--weights-dir`` check (before anything is written), per-file sha256 fingerprints, and a trial
row's ``weights_source`` / ``weights_sha256`` columns."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lssat.errors import ConfigError
from lssat.weights import hub_source, missing_message, sha256_file, weights_dir, weights_file


# ------------------------------------------------------------------------ the space
def space_backbones(space: Any) -> list[str]:
    """Every backbone ``space`` can draw: fixed, searched choices and enqueued values."""
    from lssat.config import TrialConfig

    names: list[str] = []
    if "backbone" in space.fixed:
        names.append(str(space.fixed["backbone"]))
    for p in space.params:
        if p.name == "backbone":
            names += [str(c) for c in p.choices]
    names += [str(e["backbone"]) for e in space.enqueue if "backbone" in e]
    if not names:
        names.append(TrialConfig.backbone)
    return list(dict.fromkeys(names))


def space_pretrained(space: Any) -> bool:
    """True when a trial of ``space`` can have ``pretrained: true``."""
    if space.fixed.get("pretrained") is True:
        return True
    searched = any(p.name == "pretrained" and True in p.choices for p in space.params)
    return searched or any(e.get("pretrained") is True for e in space.enqueue)


def pretrained_backbones(space: Any) -> list[str]:
    """The backbones whose weights a search of ``space`` loads ([] when none is pretrained)."""
    return space_backbones(space) if space_pretrained(space) else []


def weights_table(
    space: Any, folder: str | Path | None, space_label: str = "SPACE"
) -> tuple[Path | None, dict[str, dict[str, str | None]]]:
    """The weights folder (``folder`` or ``$LSSAT_WEIGHTS``) and, per pretrained backbone,
    ``{"source", "sha256"}``: the local file and its sha256, or timm's download location
    (sha256 None) when there is no folder. A missing folder or file is a ConfigError."""
    where = weights_dir(folder)
    if where is not None and not where.is_dir():
        raise ConfigError(f"--weights-dir {where} is not a folder")
    table: dict[str, dict[str, str | None]] = {}
    for name in pretrained_backbones(space):
        if where is None:
            table[name] = {"source": hub_source(name), "sha256": None}
            continue
        path = weights_file(name, where)
        if not path.is_file():
            raise ConfigError(missing_message(name, where, space_label))
        table[name] = {"source": str(path), "sha256": sha256_file(path)}
    return where, table


def describe(space: Any, where: Path | None, table: Mapping[str, Any]) -> str:
    """The search's one line about weights (the demo's says it trains from scratch)."""
    if not table:
        return "weights: none pretrained, every trial trains from scratch (pretrained: false)"
    if space.fixed.get("pretrained") is not True:
        where_text = f"from {where}" if where is not None else "downloaded by timm"
        return f"weights: pretrained is searched: ImageNet weights {where_text}, or from scratch"
    if where is None:
        return (
            f"weights: ImageNet-pretrained, downloaded by timm on each worker for "
            f"{len(table)} backbone(s) (needs internet; --weights-dir for offline nodes)"
        )
    return f"weights: ImageNet-pretrained from {where} ({len(table)} backbone(s), sha256 recorded)"


def row_columns(config: Mapping[str, Any], table: Mapping[str, Any]) -> dict[str, str | None]:
    """``weights_source`` / ``weights_sha256`` of a trial row; both None when it trained from
    scratch."""
    entry = table.get(str(config.get("backbone"))) if config.get("pretrained") else None
    entry = entry or {}
    return {"weights_source": entry.get("source"), "weights_sha256": entry.get("sha256")}


