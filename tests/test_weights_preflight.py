"""Issue 24, item 9: an offline pre-flight for pretrained weights. Before any trial starts,
every backbone the space can propose must have its weights in --weights-dir, the local
timm/Hugging Face cache, or a hub that answers one quick probe; otherwise one sentence names
the missing backbones and the three ways out, exit 2, nothing written. No test needs the
internet: the hub is a local port (closed, or a listening socket) and the caches are empty
temp folders."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from lssat.errors import ConfigError
from search.driver.plan import Request, resolve
from search.run import main

SPACE = """\
task: deepfake
trials: 2
fixed: {epochs: 1, img_size: 32, batch_size: 16, pretrained: true}
params:
  backbone: {choices: [resnet18, vit_tiny_patch16_224]}
"""


@pytest.fixture
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Empty caches, and a hub at a local port nothing listens on (refused at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("LSSAT_WEIGHTS", raising=False)
    (tmp_path / "space.yaml").write_text(SPACE)
    yield tmp_path / "space.yaml"


def _cache(root: Path, repo: str, filename: str = "model.safetensors") -> None:
    """One file in a Hugging Face cache layout, as huggingface_hub leaves it."""
    base = root / f"models--{repo.replace('/', '--')}"
    (base / "refs").mkdir(parents=True)
    (base / "refs" / "main").write_text("abc123")
    (base / "snapshots" / "abc123").mkdir(parents=True)
    (base / "snapshots" / "abc123" / filename).write_bytes(b"weights")


def _request(space: Path, tmp_path: Path, data: Path, **kw: object) -> Request:
    return Request(task="deepfake", space=str(space), data=str(data),
                   results=str(tmp_path / "results"), **kw)  # fmt: skip


def test_offline_without_weights_is_one_sentence_and_writes_nothing(
    offline: Path, tmp_path: Path, demo_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = tmp_path / "results"
    code = main(["--task", "deepfake", "--space", str(offline), "--data", str(demo_data),
                 "--results", str(results), "--dry-run", "--no-dashboard"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err
    for part in ("'resnet18'", "'vit_tiny_patch16_224'", f"python -m search.weights fetch "
                 f"--space {offline}", "--weights-dir", "--no-pretrained", "pretrained: false"):
        assert part in err, (part, err)
    assert not results.exists()


def test_cached_weights_or_a_reachable_hub_pass(
    offline: Path, tmp_path: Path, demo_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _cache(tmp_path / "hf", "timm/resnet18.a1_in1k")
    with pytest.raises(ConfigError) as err:  # one of the two is cached: the other is named
        resolve(_request(offline, tmp_path, demo_data))
    assert "'vit_tiny_patch16_224'" in str(err.value) and "'resnet18'" not in str(err.value)
    _cache(tmp_path / "hf", "timm/vit_tiny_patch16_224.augreg_in21k_ft_in1k")
    plan = resolve(_request(offline, tmp_path, demo_data))  # all cached: no hub needed
    assert plan.hub_offline and plan.weights["resnet18"]["source"].endswith("model.safetensors")
    with socket.socket() as hub:  # nothing cached, but the hub answers
        hub.bind(("127.0.0.1", 0))
        hub.listen()
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{hub.getsockname()[1]}")
        monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
        plan = resolve(_request(offline, tmp_path, demo_data))
    assert not plan.hub_offline and plan.weights["resnet18"]["source"].startswith("hf-hub:")


def test_no_pretrained_trains_from_scratch(
    offline: Path, tmp_path: Path, demo_data: Path
) -> None:
    plan = resolve(_request(offline, tmp_path, demo_data, pretrained=False))
    assert plan.weights == {} and plan.space.fixed["pretrained"] is False
