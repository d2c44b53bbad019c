"""Pretrained weights for offline nodes: fetch every backbone a space can draw (timm's own
download) into ``DIR/<timm model name>.safetensors``; the CLI is ``python -m search.weights``."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from lssat.errors import ConfigError, LssatError
from lssat.weights import (
    sha256_file,
    weights_file,
)

Downloader = Callable[[str], Mapping[str, Any]]


class DownloadError(LssatError):
    """A backbone's weights could not be downloaded (exit code 1)."""


from search.optimize.pretrained import (  # noqa: E402,F401  (re-exported)
    describe,
    pretrained_backbones,
    row_columns,
    space_backbones,
    space_pretrained,
    weights_table,
)


# -------------------------------------------------------------------------- fetching
def timm_download(name: str) -> dict[str, Any]:
    """The ImageNet-pretrained state dict timm downloads for ``name`` (its own classifier)."""
    import timm

    model = timm.create_model(name, pretrained=True)
    return {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}


def save_weights(state: Mapping[str, Any], path: Path) -> Path:
    """Write a state dict as safetensors atomically (temporary file + rename)."""
    from safetensors.torch import save_file

    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        save_file(dict(state), str(tmp))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def fetch(
    names: list[str],
    out: Path,
    *,
    force: bool = False,
    download: Downloader = timm_download,
    say: Callable[[str], None] = print,
) -> list[Path]:
    """Download each backbone's weights into ``out`` (kept when there unless ``force``)."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--out {out} cannot be created ({exc.strerror or exc})") from None
    paths = []
    for name in names:
        path = weights_file(name, out)
        if path.is_file() and not force:
            say(f"{name}: kept {path}")
            paths.append(path)
            continue
        try:
            state = download(name)
        except Exception as exc:  # noqa: BLE001 - network, hub or timm: one sentence
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
            raise DownloadError(
                f"downloading the pretrained weights of backbone {name!r} failed "
                f"({type(exc).__name__}: {first}); run this on a machine with internet"
            ) from None
        save_weights(state, path)
        say(f"{name}: saved {path} (sha256 {sha256_file(path)[:12]})")
        paths.append(path)
    return paths


# ------------------------------------------------------------------------------- CLI
