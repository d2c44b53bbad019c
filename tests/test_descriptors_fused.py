"""The opt-in compiled LBP backend: exact to scikit-image in every float dtype, switchable,
and a real compiler failure falls back to eager with one warning."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import torch
from skimage.feature import local_binary_pattern

import lssat.descriptors as D
from lssat.descriptors import fused

METHODS = ("default", "ror", "uniform", "nri_uniform", "var")


def sk_lbp(images: np.ndarray, P: int, R: float, method: str) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # skimage warns about float input; values are integers
        return np.stack([local_binary_pattern(im, P, R, method) for im in images])


def levels_images(shape: tuple[int, int], seed: int, count: int = 5) -> np.ndarray:
    """``count`` integer images with 1 (constant), 2, 3, 16 and 256 grey levels."""
    rng = np.random.default_rng(seed)
    levels = (1, 2, 3, 16, 256)[:count]
    return np.stack([rng.integers(0, n, size=shape) for n in levels]).astype(np.float64)


def assert_same(expected: np.ndarray, got: torch.Tensor, what: str) -> None:
    got_np = got[:, 0].double().cpu().numpy()
    same = (expected == got_np) | (np.isnan(expected) & np.isnan(got_np))
    assert same.all(), f"{what}: {int((~same).sum())} of {same.size} pixels differ"


def test_backend_choice_and_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(fused.ENV_VAR, raising=False)
    assert D.get_backend() == "eager"
    with D.backend("compiled"):
        assert D.get_backend() == "compiled"
    assert D.get_backend() == "eager"
    monkeypatch.setenv(fused.ENV_VAR, "compiled")
    assert D.get_backend() == "compiled"
    monkeypatch.setenv(fused.ENV_VAR, "fast")
    with pytest.raises(
        ValueError, match=r"\$LSSAT_DESCRIPTOR_BACKEND 'fast' is unknown; allowed: eager"
    ):
        D.get_backend()
    with pytest.raises(ValueError, match="'triton' is unknown"):
        D.set_backend("triton")


@pytest.mark.slow
def test_compiled_bit_exact_every_method_and_dtype() -> None:
    images = levels_images((12, 17), seed=3)
    with D.backend("compiled"):
        for method in METHODS:
            expected = sk_lbp(images, 8, 1.0, method)
            for dtype in (torch.float64, torch.float32, torch.bfloat16):
                x = torch.from_numpy(images).to(dtype)[:, None]
                out = D.compute("lbp", x, P=8, R=1.0, method=method)
                assert out.shape == x.shape and out.dtype == dtype
                # codes are exact in every dtype; a variance is skimage's, rounded to dtype
                rounded = torch.from_numpy(expected).to(dtype).double().numpy()
                assert_same(rounded, out, f"compiled {method} {dtype}")
        assert D.get_backend() == "compiled", "compilation failed and fell back to eager"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("P", "R", "method", "shape"),
    [(5, 0.7, "uniform", (9, 4)), (13, 4.0, "nri_uniform", (5, 3)), (6, 1000.0, "default", (1, 6))],
)
def test_compiled_odd_settings(P: int, R: float, method: str, shape: tuple[int, int]) -> None:
    """Fractional R below 1, R beyond the image (some or all samples outside), tiny images."""
    images = levels_images(shape, seed=P)
    with D.backend("compiled"):
        out = D.compute("lbp", torch.from_numpy(images)[:, None], P=P, R=R, method=method)
        assert D.get_backend() == "compiled"
    assert_same(sk_lbp(images, P, R, method), out, f"P={P} R={R} {method} {shape}")


@pytest.mark.slow
def test_compiled_new_batch_size_and_real_faces() -> None:
    from lssat.data.demo import lfw_faces

    gray = torch.tensor(lfw_faces()[:7], dtype=torch.float64)[:, None]  # real 25x25 faces, 0..255
    expected = sk_lbp(gray[:, 0].numpy(), 8, 1.0, "uniform")
    with D.backend("compiled"):
        for sub in (slice(0, 7), slice(0, 3), slice(2, 7)):
            out = D.compute("lbp", gray[sub].float(), P=8, R=1.0, method="uniform")
            assert_same(expected[sub], out, f"batch {sub}")
        assert D.get_backend() == "compiled", "compilation failed and fell back to eager"


@pytest.mark.slow
def test_compiler_failure_falls_back_to_eager(tmp_path) -> None:
    """A real failure: no C++ compiler and an empty Inductor cache -> one warning, eager."""
    script = textwrap.dedent(
        """
        import warnings, torch
        import lssat.descriptors as D
        x = torch.randint(0, 256, (2, 1, 9, 11)).double()
        D.set_backend("compiled")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            a = D.compute("lbp", x, P=8, R=1.0, method="uniform")
            b = D.compute("lbp", x, P=8, R=1.0, method="uniform")
        with D.backend("eager"):
            ref = D.compute("lbp", x, P=8, R=1.0, method="uniform")
        print("WARNINGS", len(caught), str(caught[0].message) if caught else "")
        print("SAME", bool((a == ref).all() and (b == ref).all()), "NOW", D.get_backend())
        """
    )
    env = dict(os.environ, CXX=str(tmp_path / "no-such-g++"), TORCHINDUCTOR_CACHE_DIR=str(tmp_path))
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "WARNINGS 1 compiled descriptors unavailable" in done.stdout
    assert "no-such-g++" in done.stdout
    assert "SAME True NOW eager" in done.stdout


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_compiled_cuda_bit_exact() -> None:
    images = levels_images((33, 40), seed=7)
    x = torch.from_numpy(images)[:, None]
    with D.backend("compiled"):
        for method in METHODS:
            out = D.compute("lbp", x.cuda(), P=8, R=1.0, method=method)
            assert out.device.type == "cuda"
            assert_same(sk_lbp(images, 8, 1.0, method), out, f"cuda compiled {method}")
        assert D.get_backend() == "compiled"
