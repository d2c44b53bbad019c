"""Descriptor registry, the non-LBP descriptors against slow references, encodings, bad input."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch

import lssat.descriptors as D
from lssat.descriptors.kirsch import ldp_codes
from lssat.errors import ConfigError

# one parameter set per descriptor, plus a few variants
CASES = [
    ("lbp", {}),
    ("lbp", {"P": 8, "R": 1.0, "method": "default"}),
    ("lbp", {"P": 12, "R": 2.5, "method": "ror"}),
    ("lbp", {"P": 16, "R": 2, "method": "nri_uniform"}),
    ("lbp", {"P": 8, "R": 1.0, "method": "var"}),
    ("mslbp", {}),
    ("ltp", {"t": 3}),
    ("ldp", {}),
    ("ldp", {"k": 5}),
    ("ldn", {}),
    ("hog", {}),
    ("hog", {"cell": 6, "bins": 12}),
]


def grey(b: int = 2, h: int = 32, w: int = 48, levels: int = 256, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, levels, (b, 1, h, w), generator=g).float()


# ----------------------------------------------------------------------------- slow references
KIRSCH = [  # compass masks, east first then counter-clockwise (rows grow downwards)
    [[-3, -3, 5], [-3, 0, 5], [-3, -3, 5]],
    [[-3, 5, 5], [-3, 0, 5], [-3, -3, -3]],
    [[5, 5, 5], [-3, 0, -3], [-3, -3, -3]],
    [[5, 5, -3], [5, 0, -3], [-3, -3, -3]],
    [[5, -3, -3], [5, 0, -3], [5, -3, -3]],
    [[-3, -3, -3], [5, 0, -3], [5, 5, -3]],
    [[-3, -3, -3], [-3, 0, -3], [5, 5, 5]],
    [[-3, -3, -3], [-3, 0, 5], [-3, 5, 5]],
]
RING = [(0, 1), (-1, 1), (-1, 0), (-1, -1), (0, -1), (1, -1), (1, 0), (1, 1)]


def pixel(img: np.ndarray, r: int, c: int) -> float:
    """Edge-replicated pixel."""
    h, w = img.shape
    return float(img[min(max(r, 0), h - 1), min(max(c, 0), w - 1)])


def kirsch_at(img: np.ndarray, r: int, c: int) -> list[float]:
    return [
        sum(mask[i][j] * pixel(img, r + i - 1, c + j - 1) for i in range(3) for j in range(3))
        for mask in KIRSCH
    ]


def ldp_reference(img: np.ndarray, k: int) -> np.ndarray:
    out = np.zeros(img.shape)
    for r in range(img.shape[0]):
        for c in range(img.shape[1]):
            m = kirsch_at(img, r, c)
            strongest = sorted(range(8), key=lambda i: (-abs(m[i]), i))[:k]
            out[r, c] = sum(1 << i for i in strongest)
    return out


def ldn_reference(img: np.ndarray) -> np.ndarray:
    out = np.zeros(img.shape)
    for r in range(img.shape[0]):
        for c in range(img.shape[1]):
            m = kirsch_at(img, r, c)
            out[r, c] = 8 * m.index(max(m)) + m.index(min(m))
    return out


def ltp_reference(img: np.ndarray, t: float) -> np.ndarray:
    out = np.zeros((2, *img.shape))
    for r in range(img.shape[0]):
        for c in range(img.shape[1]):
            for i, (dr, dc) in enumerate(RING):
                d = pixel(img, r + dr, c + dc) - img[r, c]
                out[0, r, c] += (d >= t) << i
                out[1, r, c] += (d <= -t) << i
    return out


def hog_reference(img: np.ndarray, cell: int, bins: int) -> np.ndarray:
    h, w = img.shape
    hc, wc = math.ceil(h / cell), math.ceil(w / cell)
    hist = np.zeros((bins, hc, wc))
    for r in range(h):
        for c in range(w):
            gx = img[r, c + 1] - img[r, c - 1] if 0 < c < w - 1 else 0.0
            gy = img[r + 1, c] - img[r - 1, c] if 0 < r < h - 1 else 0.0
            theta = math.atan2(gy, gx) % math.pi
            b = min(int(theta / math.pi * bins), bins - 1)
            hist[b, r // cell, c // cell] += math.hypot(gx, gy)
    out = np.zeros((bins, h, w))
    for i in range(hc):
        for j in range(wc):
            block = hist[:, max(i - 1, 0) : i + 2, max(j - 1, 0) : j + 2]
            normed = hist[:, i, j] / (np.sqrt((block**2).sum()) + 1e-5)
            out[:, i * cell : (i + 1) * cell, j * cell : (j + 1) * cell] = normed[:, None, None]
    return out


def tiny_images() -> np.ndarray:
    """Small integer images with many ties: few grey levels, a constant one, a ramp."""
    rng = np.random.default_rng(3)
    imgs = [rng.integers(0, n, size=(7, 9)) for n in (2, 3, 5, 256)]
    imgs += [np.full((7, 9), 17), np.add.outer(np.arange(7), np.arange(9)) * 3]
    return np.stack(imgs).astype(np.float64)


@pytest.mark.parametrize("k", [1, 3, 7])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_ldp_matches_per_pixel_reference(k: int, dtype: torch.dtype) -> None:
    imgs = tiny_images()
    out = D.compute("ldp", torch.from_numpy(imgs)[:, None].to(dtype), k=k)
    assert out.dtype == dtype
    for n, img in enumerate(imgs):
        np.testing.assert_array_equal(out[n, 0].double().numpy(), ldp_reference(img, k))
    assert set(np.unique(out.numpy())) <= set(ldp_codes(k))


def test_ldn_and_ltp_match_per_pixel_references() -> None:
    imgs = tiny_images()
    x = torch.from_numpy(imgs)[:, None]
    ldn = D.compute("ldn", x)
    ltp = D.compute("ltp", x, t=2)
    assert ltp.shape == (len(imgs), 2, 7, 9)
    for n, img in enumerate(imgs):
        np.testing.assert_array_equal(ldn[n, 0].numpy(), ldn_reference(img))
        np.testing.assert_array_equal(ltp[n].numpy(), ltp_reference(img, 2))
    zero_t = D.compute("ltp", x, t=0)  # a tie sets both patterns
    assert torch.equal(zero_t[4], torch.full((2, 7, 9), 255.0, dtype=torch.float64))


@pytest.mark.parametrize(("cell", "bins"), [(3, 9), (4, 5), (1, 9)])
def test_hog_matches_per_pixel_reference(cell: int, bins: int) -> None:
    imgs = tiny_images()
    out = D.compute("hog", torch.from_numpy(imgs)[:, None], cell=cell, bins=bins)
    assert out.shape == (len(imgs), bins, 7, 9)
    for n, img in enumerate(imgs):
        np.testing.assert_allclose(out[n].numpy(), hog_reference(img, cell, bins), atol=1e-12)
    assert out.min() >= 0 and out.max() <= 1


def test_to_gray_is_opencv_bt601_on_every_colour() -> None:
    levels = np.arange(256, dtype=np.uint8)
    colours = np.stack(np.meshgrid(levels, levels[::3], levels[::5], indexing="ij"), -1)
    colours = colours.reshape(1, -1, 3)
    expected = cv2.cvtColor(colours, cv2.COLOR_RGB2GRAY)
    got = D.to_gray(torch.from_numpy(colours).permute(2, 0, 1)[None])
    assert got.dtype == torch.float32 and got.shape == (1, 1, 1, colours.shape[1])
    np.testing.assert_array_equal(got[0, 0].numpy(), expected)


# ----------------------------------------------------------------------- registry and shapes
def test_registry_names_and_specs() -> None:
    assert sorted(D.DESCRIPTORS) == ["hog", "lbp", "ldn", "ldp", "ltp", "mslbp"]
    assert D.ENCODINGS == ("map", "hist", "bits")
    assert D.DESCRIPTORS["mslbp"].num_codes() == (10, 18, 26)
    assert D.DESCRIPTORS["ltp"].channels(t=2) == 2
    assert D.DESCRIPTORS["lbp"].num_codes(P=8, method="ror") == (36,)
    assert D.DESCRIPTORS["lbp"].num_codes(P=24, method="uniform") == (26,)
    assert D.DESCRIPTORS["lbp"].num_codes(method="var") is None
    assert D.DESCRIPTORS["ldp"].num_codes(k=3) == (56,)
    assert D.DESCRIPTORS["hog"].num_codes() is None
    assert D.DESCRIPTORS["hog"].encodings() == ("map", "hist")
    assert D.DESCRIPTORS["lbp"].encodings(P=16, method="default") == ("map", "bits")


@pytest.mark.parametrize(("name", "params"), CASES)
def test_shapes_dtypes_and_every_encoding(name: str, params: dict) -> None:
    spec = D.DESCRIPTORS[name]
    for dtype in (torch.float32, torch.float64):
        x = grey().to(dtype)
        m = D.compute(name, x, **params)
        assert m.shape == (2, spec.channels(**params), 32, 48)
        assert m.dtype == dtype and m.device == x.device
        n = D.normalize(m, name, **params)
        assert n.shape == m.shape and n.dtype == dtype
        assert not n.isnan().any() and n.min() >= 0 and n.max() <= 1
        for enc in spec.encodings(**params):
            t = D.encode(m, name, enc, 16, **params)
            assert t.shape == (2, 6, D.target_dim(name, enc, 16, **params)), enc
            assert not t.isnan().any() and t.min() >= 0 and t.max() <= 1
            if enc == "hist":
                sums = t.sum(-1)
                groups = 1 if name == "hog" else spec.channels(**params)
                assert torch.allclose(sums, torch.full_like(sums, groups))
    assert D.compute(name, grey().half(), **params).dtype == torch.float16


def mae_patchify(x: torch.Tensor, p: int) -> torch.Tensor:
    """The MAE reference patchify: nchpwq -> nhwpqc."""
    n, c, h, w = x.shape[0], x.shape[1], x.shape[2] // p, x.shape[3] // p
    x = x.reshape(n, c, h, p, w, p)
    return torch.einsum("nchpwq->nhwpqc", x).reshape(n, h * w, p * p * c)


def test_map_and_bits_encodings_are_mae_patchify() -> None:
    m = D.compute("mslbp", grey(h=16, w=24))
    t = D.encode(m, "mslbp", "map", 8)
    assert torch.equal(t, mae_patchify(m / torch.tensor([9.0, 17.0, 25.0]).view(1, 3, 1, 1), 8))
    bits = D.encode(m, "mslbp", "bits", 8)  # widths 4, 5, 5
    planes = mae_patchify(m, 8).view(2, 6, 64, 3)
    weights = [2.0**j for j in range(4)] + [2.0**j for j in range(5)] * 2
    decoded = (bits.view(2, 6, 64, 14) * torch.tensor(weights)).split([4, 5, 5], -1)
    for c in range(3):
        assert torch.equal(decoded[c].sum(-1), planes[..., c])


def test_hist_counts_codes_per_patch_in_row_major_order() -> None:
    codes = torch.zeros(1, 1, 4, 6)
    codes[0, 0, :2, 2:4] = 9  # patch (0, 1) is all 9 (the non-uniform code for P = 8)
    codes[0, 0, 2:, 4:] = 3  # patch (1, 2) is all 3
    codes[0, 0, 3, 5] = 4
    h = D.encode(codes, "lbp", "hist", 2)
    assert h.shape == (1, 6, 10)
    assert h[0, 1, 9] == 1 and h[0, 0, 0] == 1
    assert h[0, 5, 3] == 0.75 and h[0, 5, 4] == 0.25
    ror = D.encode(torch.full((1, 1, 2, 2), 255.0), "lbp", "hist", 2, method="ror")
    assert ror[0, 0, -1] == 1  # 255 is the last of the 36 necklaces
    ldp = D.encode(torch.full((1, 1, 2, 2), 7.0), "ldp", "hist", 2, k=3)
    assert ldp[0, 0, 0] == 1  # 0b111 is the first of the 56 codes


def test_hog_map_encoding_is_maskfeat_cells_when_cell_divides_patch() -> None:
    x = grey(h=32, w=32)
    m = D.compute("hog", x, cell=8, bins=9)
    t = D.encode(m, "hog", "map", 16, cell=8, bins=9)
    assert t.shape == (2, 4, 2 * 2 * 9)
    cells = m[:, :, ::8, ::8]  # [B, 9, 4, 4]
    assert torch.equal(t, mae_patchify(cells, 2))


def test_var_map_nan_becomes_zero() -> None:
    flat = torch.full((1, 1, 8, 8), 100.0, dtype=torch.float64)
    var = D.compute("lbp", flat, method="var")
    assert var[0, 0, 4, 4].isnan()  # zero variance inside a flat image
    assert D.normalize(var, "lbp", method="var")[0, 0, 4, 4] == 0
    assert D.encode(var, "lbp", "hist", 8, method="var")[0, 0, 0] > 0


# ----------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("name", "params", "words"),
    [
        ("sift", {}, ["sift", "hog, lbp, ldn, ldp, ltp, mslbp"]),
        ("lbp", {"P": 3}, ["'P'", "[4, 24]"]),
        ("lbp", {"P": 25}, ["'P'", "[4, 24]"]),
        ("lbp", {"P": 8.5}, ["'P'", "integer"]),
        ("lbp", {"P": True}, ["'P'"]),
        ("lbp", {"R": 0}, ["'R'", "(0.0"]),
        ("lbp", {"R": float("nan")}, ["'R'"]),
        ("lbp", {"R": float("inf")}, ["'R'"]),
        ("lbp", {"method": "rotation"}, ["'method'", "default, ror, uniform, nri_uniform, var"]),
        ("lbp", {"k": 3}, ["'lbp'", "'k'", "P, R, method"]),
        ("ldp", {"k": 0}, ["'k'", "[1, 7]"]),
        ("ldp", {"k": 8}, ["'k'", "[1, 7]"]),
        ("ltp", {"t": -1}, ["'t'"]),
        ("hog", {"cell": 0}, ["'cell'"]),
        ("hog", {"bins": 1}, ["'bins'"]),
        ("mslbp", {"P": 8}, ["'mslbp'", "'P'", "none"]),
    ],
)
def test_bad_names_and_params_raise_value_error(name: str, params: dict, words: list) -> None:
    with pytest.raises(ValueError) as err:
        D.compute(name, grey(), **params)
    assert isinstance(err.value, ConfigError)
    for word in words:
        assert word in str(err.value)


@pytest.mark.parametrize(
    ("gray", "words"),
    [
        (torch.zeros(1, 8, 8), ["shape", "[B, 1, H, W]"]),
        (torch.zeros(1, 3, 8, 8), ["shape", "to_gray"]),
        (torch.zeros(1, 1, 8, 8, dtype=torch.uint8), ["dtype", "float32"]),
        (torch.zeros(1, 1, 8, 8, dtype=torch.int64), ["dtype"]),
        (torch.zeros(0, 1, 8, 8), ["empty batch"]),
        (np.zeros((1, 1, 8, 8)), ["torch.Tensor"]),
    ],
)
def test_bad_images_raise_value_error(gray, words: list) -> None:
    for name in D.DESCRIPTORS:
        with pytest.raises(ValueError) as err:
            D.compute(name, gray)
        for word in words:
            assert word in str(err.value)


def test_to_gray_rejects_non_uint8_and_bad_shapes() -> None:
    with pytest.raises(ValueError, match="uint8"):
        D.to_gray(torch.zeros(1, 3, 4, 4))
    with pytest.raises(ValueError, match=r"\[B, 3, H, W\]"):
        D.to_gray(torch.zeros(1, 4, 4, 4, dtype=torch.uint8))
    with pytest.raises(ValueError, match="empty"):
        D.to_gray(torch.zeros(0, 3, 4, 4, dtype=torch.uint8))


def test_encoding_errors_name_descriptor_and_encoding() -> None:
    m = D.compute("hog", grey())
    with pytest.raises(ConfigError, match="'bits'.*'hog'"):
        D.encode(m, "hog", "bits", 16)
    with pytest.raises(ConfigError, match="'bits'.*'lbp'.*var"):
        D.target_dim("lbp", "bits", 16, method="var")
    with pytest.raises(ConfigError, match="'hist'.*'lbp'"):
        D.target_dim("lbp", "hist", 16, P=16, method="default")
    with pytest.raises(ConfigError, match="unknown encoding 'pixels'"):
        D.target_dim("ldp", "pixels", 16)
    lbp = D.compute("lbp", grey())
    with pytest.raises(ValueError, match="multiples of patch_size 10"):
        D.encode(lbp, "lbp", "map", 10)
    with pytest.raises(ValueError, match="patch_size"):
        D.target_dim("lbp", "map", 0)
    with pytest.raises(ValueError, match=r"\[B, 3, H, W\]"):
        D.encode(lbp, "mslbp", "map", 16)
    with pytest.raises(ValueError, match="not 'lbp' codes"):
        D.encode(lbp + 100, "lbp", "hist", 16)


def test_config_accepts_every_registered_descriptor() -> None:
    from lssat.config import DESCRIPTOR_PARAMS

    assert set(DESCRIPTOR_PARAMS) == set(D.DESCRIPTORS)
    for name, fields in DESCRIPTOR_PARAMS.items():
        assert set(fields) == {p.name for p in D.DESCRIPTORS[name].params}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize(("name", "params"), CASES)
def test_cuda_matches_cpu(name: str, params: dict) -> None:
    x = grey(levels=8)
    cpu = D.compute(name, x, **params)
    gpu = D.compute(name, x.cuda(), **params)
    assert gpu.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), cpu, equal_nan=True)
    for enc in D.DESCRIPTORS[name].encodings(**params):
        torch.testing.assert_close(
            D.encode(gpu, name, enc, 16, **params).cpu(), D.encode(cpu, name, enc, 16, **params)
        )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_compute_needs_no_cpu_and_no_host_sync(dtype: torch.dtype) -> None:
    """Every descriptor and the map/bits encodings run on the meta device (shapes only):
    no NumPy, no CPU-only op, no ``.item()`` in those paths."""
    x = torch.empty(2, 1, 32, 48, device="meta", dtype=dtype)
    for name, params in CASES + [("lbp", {"P": 24, "R": 3, "method": "nri_uniform"})]:
        m = D.compute(name, x, **params)
        assert m.device.type == "meta" and m.dtype == dtype
        assert m.shape == (2, D.DESCRIPTORS[name].channels(**params), 32, 48)
        for enc in ("map", "bits"):
            if enc in D.DESCRIPTORS[name].encodings(**params):
                dim = D.target_dim(name, enc, 16, **params)
                assert D.encode(m, name, enc, 16, **params).shape == (2, 6, dim)
