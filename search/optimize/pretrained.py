"""Which backbones a space loads pretrained weights for, and where they come from: the
``--weights-dir`` check (before anything is written), per-file sha256 fingerprints, a trial
row's ``weights_source`` / ``weights_sha256`` columns, and the pre-flight without a folder
(:func:`preflight`: the local timm/Hugging Face cache, else one quick probe of the hub)."""

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
        cached = sum(1 for e in table.values() if not str(e.get("source")).startswith(
            ("hf-hub:", "http", "timm:")))  # fmt: skip
        return (
            f"weights: ImageNet-pretrained for {len(table)} backbone(s): {cached} in the "
            f"local cache, {len(table) - cached} downloaded by timm on each worker (the hub "
            "answered; --weights-dir for offline nodes)"
        )
    return f"weights: ImageNet-pretrained from {where} ({len(table)} backbone(s), sha256 recorded)"


def row_columns(config: Mapping[str, Any], table: Mapping[str, Any]) -> dict[str, str | None]:
    """``weights_source`` / ``weights_sha256`` of a trial row; both None when it trained from
    scratch."""
    entry = table.get(str(config.get("backbone"))) if config.get("pretrained") else None
    entry = entry or {}
    return {"weights_source": entry.get("source"), "weights_sha256": entry.get("sha256")}




# ----------------------------------------------------------------- the pre-flight
PROBE_TIMEOUT_S = 3.0  # one quick look at the hub, all hosts at once
DEFAULT_HF_ENDPOINT = "https://huggingface.co"


def _hf_cache() -> Path:
    """Hugging Face's hub cache as the environment says *now* (``HF_HUB_CACHE``, ``HF_HOME``)."""
    import os

    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or Path(
        os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    ) / "huggingface"
    return Path(home).expanduser() / "hub"


def _timm_cfg(backbone: str) -> Any:
    import timm

    try:
        return timm.models.get_pretrained_cfg(backbone)
    except Exception:  # noqa: BLE001 - an unknown tag: nothing cached, nothing to probe
        return None


def cached_weights(backbone: str) -> str | None:
    """The file timm would load ``backbone``'s weights from without a download: the Hugging
    Face cache entry of its ``hf_hub_id``, else torch hub's copy of its URL; None if neither."""
    cfg = _timm_cfg(backbone)
    if cfg is None:
        return None
    hub_id = getattr(cfg, "hf_hub_id", None)
    if hub_id:
        from huggingface_hub import try_to_load_from_cache

        repo, _, revision = str(hub_id).partition("@")
        names = [getattr(cfg, "hf_hub_filename", None), "model.safetensors", "pytorch_model.bin"]
        for name in filter(None, names):
            found = try_to_load_from_cache(
                repo, name, cache_dir=str(_hf_cache()), revision=revision or None
            )
            if isinstance(found, str):
                return found
        return None
    url = getattr(cfg, "url", None)
    if url:
        from urllib.parse import urlparse

        import torch

        path = Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(url).path).name
        return str(path) if path.is_file() else None
    return None


def hub_address(backbone: str) -> tuple[str, int]:
    """``(host, port)`` timm would download ``backbone``'s weights from (``HF_ENDPOINT`` for a
    Hugging Face id, else its URL's host)."""
    import os
    from urllib.parse import urlparse

    cfg = _timm_cfg(backbone)
    url = getattr(cfg, "url", None) if cfg is not None else None
    if cfg is None or getattr(cfg, "hf_hub_id", None) or not url:
        url = os.environ.get("HF_ENDPOINT") or DEFAULT_HF_ENDPOINT
    parsed = urlparse(str(url))
    return parsed.hostname or "", parsed.port or (80 if parsed.scheme == "http" else 443)


def reachable(addresses: set[tuple[str, int]], timeout: float = PROBE_TIMEOUT_S) -> set[str]:
    """The ``host:port`` of ``addresses`` that accept a TCP connection within ``timeout``
    seconds, all probed at once (a name that does not resolve, a refused or silent port: no)."""
    import socket
    import threading

    ok: set[str] = set()

    def probe(host: str, port: int) -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                ok.add(f"{host}:{port}")
        except OSError:
            pass

    threads = [threading.Thread(target=probe, args=a, daemon=True) for a in sorted(addresses)]
    for t in threads:
        t.start()
    for t in threads:  # name resolution ignores the socket timeout: never wait longer
        t.join(timeout)
    return set(ok)


def preflight(
    table: Mapping[str, Mapping[str, str | None]], where: Path | None, space_label: str
) -> tuple[dict[str, dict[str, str | None]], bool]:
    """Before any trial starts: each pretrained backbone of ``table`` (no ``--weights-dir``:
    :func:`weights_table` checked the folder's files) is in the local cache, else the hub
    answers one quick probe. Returns the table (cached backbones with their cache file as
    ``source``) and whether every backbone is cached (trials then need no hub); a backbone
    with neither is a ConfigError naming them all and the three ways out."""
    import os

    out = {name: dict(entry) for name, entry in table.items()}
    if where is not None or not out:
        return out, False
    missing = []
    for name in out:
        found = cached_weights(name)
        if found:
            out[name]["source"] = found
        else:
            missing.append(name)
    if not missing:
        return out, True
    offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
    addresses = {hub_address(name) for name in missing}
    up = set() if offline else reachable(addresses)
    if all(f"{h}:{p}" in up for h, p in addresses):
        return out, False
    hubs = ", ".join(sorted(f"{h}:{p}" for h, p in addresses))
    why = "HF_HUB_OFFLINE is set" if offline else f"the model hub ({hubs}) cannot be reached"
    names = ", ".join(repr(n) for n in missing)
    raise ConfigError(
        f"pretrained weights for backbone(s) {names} are neither in a --weights-dir nor in the "
        f"local timm/Hugging Face cache, and {why}; fetch them once where there is internet "
        f"with `python -m search.weights fetch --space {space_label} --out DIR` and pass "
        "--weights-dir DIR, or train from scratch with --no-pretrained (or pretrained: false "
        "in the space)"
    )
