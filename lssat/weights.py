"""Pretrained backbone weights read from a local folder, for nodes without internet.

``pretrained: true`` loads ImageNet-pretrained weights through timm's own mechanism. With a
weights folder (``$LSSAT_WEIGHTS``; ``python -m search.run --weights-dir`` sets it for every
trial) the file ``<folder>/<timm model name>.safetensors`` is handed to
``timm.create_model(..., pretrained_cfg_overlay={"file": path})``, so timm applies its usual
adaptation (position-embedding resampling, a new head for another class count) to a local
file. Without a folder timm downloads the weights itself (needs internet). The folder is
filled once, on a machine with internet, by ``python -m search.weights fetch``.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from lssat.errors import ConfigError

ENV = "LSSAT_WEIGHTS"
SUFFIX = ".safetensors"
FETCH = "python -m search.weights fetch --space SPACE --out {folder}"

_SHA_CACHE: dict[tuple[str, int, int], str] = {}


def weights_dir(folder: str | Path | None = None) -> Path | None:
    """``folder``, else ``$LSSAT_WEIGHTS``, as an absolute path; None when neither is set."""
    given = folder if folder not in (None, "") else os.environ.get(ENV, "").strip()
    return Path(given).expanduser().resolve() if given else None


def weights_file(backbone: str, folder: str | Path) -> Path:
    """``<folder>/<backbone>.safetensors`` (the timm model name as the config gives it)."""
    return Path(folder) / f"{backbone}{SUFFIX}"


def missing_message(backbone: str, folder: Path, space: str = "SPACE") -> str:
    """One sentence: which backbone lacks its file, and the command that fetches it."""
    fetch = FETCH.replace("SPACE", space).format(folder=folder)
    return (
        f"pretrained weights for backbone {backbone!r} are missing: no file "
        f"{weights_file(backbone, folder)}; fetch them once on a machine with internet with "
        f"`{fetch}`"
    )


def timm_kwargs(backbone: str, pretrained: bool, folder: str | Path | None = None) -> dict:
    """``timm.create_model`` keywords that load ``backbone``'s pretrained weights.

    Not pretrained: ``pretrained=False``. A weights folder (``folder`` or ``$LSSAT_WEIGHTS``):
    its file through ``pretrained_cfg_overlay``; a missing file is a ConfigError naming the
    backbone and the fetch command. No folder: timm downloads (``pretrained=True``).
    """
    if not pretrained:
        return {"pretrained": False}
    where = weights_dir(folder)
    if where is None:
        return {"pretrained": True}
    path = weights_file(backbone, where)
    if not path.is_file():
        raise ConfigError(missing_message(backbone, where))
    return {"pretrained": True, "pretrained_cfg_overlay": {"file": str(path)}}


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file (remembered per path, size and modification time)."""
    p = Path(path)
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _SHA_CACHE:
        digest = hashlib.sha256()
        with open(p, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        _SHA_CACHE[key] = digest.hexdigest()
    return _SHA_CACHE[key]


def hub_source(backbone: str) -> str:
    """Where timm itself would download ``backbone``'s weights (``hf-hub:ID`` or a URL)."""
    import timm

    try:
        cfg: Any = timm.models.get_pretrained_cfg(backbone)
    except Exception:  # noqa: BLE001 - an unknown tag: say what was asked
        cfg = None
    if cfg is None:
        return f"timm:{backbone}"
    hub = getattr(cfg, "hf_hub_id", None)
    return f"hf-hub:{hub}" if hub else str(getattr(cfg, "url", None) or f"timm:{backbone}")
