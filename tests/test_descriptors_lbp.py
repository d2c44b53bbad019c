"""lbp / mslbp against scikit-image: bit-exact in float64, measured mismatch in float32."""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pytest
import torch
from skimage import data
from skimage.feature import local_binary_pattern

from lssat.descriptors import compute, to_gray
from lssat.descriptors.lbp import map_codes

METHODS = ("default", "ror", "uniform", "nri_uniform", "var")
# every P from 4 to 24; R integer, fractional, below 1, beyond part of or all of the image
GRID = [
    (4, 1.0), (5, 0.7), (6, 1.5), (7, 3.3), (8, 1.0), (8, 2.0), (9, 0.3), (10, 2.5),
    (11, 1.2), (12, 2.0), (13, 4.0), (14, 1.7), (15, 0.9), (16, 2.0), (17, 3.0),
    (18, 1.1), (19, 2.2), (20, 14.0), (21, 1.0), (22, 3.5), (23, 2.7), (24, 3.0), (6, 1000.0),
]  # fmt: skip
SHAPES = [(1, 1), (1, 6), (5, 3), (12, 17)]
LEVELS = (1, 2, 3, 16, 256)  # 1 = constant image


def sk_lbp(images: np.ndarray, P: int, R: float, method: str) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # skimage warns about float input; values are integers
        return np.stack([local_binary_pattern(im, P, R, method) for im in images])


def torch_lbp(images: np.ndarray, dtype: torch.dtype = torch.float64, **params) -> np.ndarray:
    x = torch.from_numpy(images.astype(np.float64)).to(dtype)[:, None]
    out = compute("lbp", x, **params)
    assert out.shape == x.shape and out.dtype == dtype
    return out[:, 0].double().numpy()


def images_for(shape: tuple[int, int], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.stack([rng.integers(0, n, size=shape) for n in LEVELS]).astype(np.float64)


def assert_same(expected: np.ndarray, got: np.ndarray, what: str) -> None:
    same = (expected == got) | (np.isnan(expected) & np.isnan(got))
    assert same.all(), f"{what}: {int((~same).sum())} of {same.size} pixels differ"


@pytest.mark.parametrize(("P", "R"), GRID)
def test_float64_bit_exact_on_grid(P: int, R: float) -> None:
    for k, shape in enumerate(SHAPES):
        images = images_for(shape, seed=P * 100 + k)
        for method in METHODS:
            assert_same(
                sk_lbp(images, P, R, method),
                torch_lbp(images, P=P, R=R, method=method),
                f"P={P} R={R} {method} shape={shape}",
            )


@functools.lru_cache(maxsize=1)
def real_images() -> dict[str, np.ndarray]:
    astronaut = torch.from_numpy(data.astronaut()).permute(2, 0, 1)[None]
    faces = np.round(data.lfw_subset() * 255)  # 200 faces/non-faces, 25x25, 0..255 integers
    return {
        "camera": data.camera()[96:224, 160:260].astype(np.float64)[None],
        "astronaut": to_gray(astronaut)[0, :, 20:148, 150:250].double().numpy(),
        "coins": data.coins()[:100, :130].astype(np.float64)[None],
        "lfw": faces[::4],
    }


@pytest.mark.parametrize(
    ("P", "R", "method"),
    [(8, 1.0, "uniform"), (8, 1.0, "default"), (16, 2.0, "nri_uniform"), (24, 3.0, "uniform"),
     (12, 1.5, "ror"), (8, 2.5, "var")],
)  # fmt: skip
def test_float64_bit_exact_on_real_images(P: int, R: float, method: str) -> None:
    for name, images in real_images().items():
        assert_same(
            sk_lbp(images, P, R, method),
            torch_lbp(images, P=P, R=R, method=method),
            f"{name} P={P} R={R} {method}",
        )


def test_mslbp_is_three_exact_uniform_scales() -> None:
    images = real_images()["lfw"]
    x = torch.from_numpy(images)[:, None]
    out = compute("mslbp", x)
    assert out.shape == (len(images), 3, 25, 25) and out.dtype == torch.float64
    for c, (P, R) in enumerate([(8, 1), (16, 2), (24, 3)]):
        assert_same(sk_lbp(images, P, R, "uniform"), out[:, c].numpy(), f"mslbp {P},{R}")


def test_float32_mismatch_rate_is_small() -> None:
    """float32 codes may differ only on exact ties of unequal pixels: measured <= 0.3 %."""
    images = np.concatenate([real_images()["camera"], real_images()["astronaut"]])
    for P, R, method in [(8, 1.0, "uniform"), (16, 2.0, "uniform"), (8, 1.5, "default")]:
        expected = sk_lbp(images, P, R, method)
        got = torch_lbp(images, torch.float32, P=P, R=R, method=method)
        assert (expected != got).mean() < 0.005, (P, R, method)
    expected = sk_lbp(images, 8, 1.0, "var")
    got = torch_lbp(images, torch.float32, P=8, R=1.0, method="var")
    np.testing.assert_allclose(got, expected, rtol=1e-6, equal_nan=True)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_input_gives_float32_codes_in_input_dtype(dtype: torch.dtype) -> None:
    images = real_images()["lfw"][:8]
    x = torch.from_numpy(images)[:, None]
    out = compute("lbp", x.to(dtype), P=8, R=1.0, method="uniform")
    assert out.dtype == dtype
    ref = compute("lbp", x.float(), P=8, R=1.0, method="uniform")
    assert torch.equal(out.float(), ref)


def test_code_mappings_match_a_plain_python_reading_of_skimage() -> None:
    """``map_codes`` (the tables) against skimage's loop written out per code, P = 4..9."""
    for P in range(4, 10):
        codes = torch.arange(1 << P)
        ror = map_codes(codes, P, "ror").tolist()
        uni = map_codes(codes, P, "uniform").tolist()
        nri = map_codes(codes, P, "nri_uniform").tolist()
        for code in range(1 << P):
            bits = [(code >> i) & 1 for i in range(P)]
            rotations = [sum(bits[(i + s) % P] << i for i in range(P)) for s in range(P)]
            assert ror[code] == min(rotations)
            changes = sum(bits[i] != bits[i + 1] for i in range(P - 1))
            ones = sum(bits)
            assert uni[code] == (ones if changes <= 2 else P + 1)
            if changes > 2:
                assert nri[code] == P * (P - 1) + 2
            elif ones in (0, P):
                assert nri[code] == (0 if ones == 0 else P * (P - 1) + 1)
            else:
                first_one, first_zero = bits.index(1), bits.index(0)
                rot = ones - first_zero if first_one == 0 else P - first_one
                assert nri[code] == 1 + (ones - 1) * P + rot


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu() -> None:
    images = real_images()["lfw"][:16]
    x = torch.from_numpy(images)[:, None]
    for method in METHODS:
        cpu = compute("lbp", x, P=8, R=1.0, method=method)
        gpu = compute("lbp", x.cuda(), P=8, R=1.0, method=method)
        assert gpu.device.type == "cuda"
        assert torch.equal(cpu.isnan(), gpu.cpu().isnan())
        assert torch.equal(cpu.nan_to_num(), gpu.cpu().nan_to_num())
