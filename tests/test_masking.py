"""Masking: exact counts, inverse permutation, mask polarity, patch layout."""

from __future__ import annotations

import pytest
import torch

from lssat.masking import (
    gather_tokens,
    num_masked_patches,
    patchify,
    random_masking,
    unpatchify,
    upsample_mask,
)

CASES = [(16, 0.75), (16, 0.5), (49, 0.9), (4, 0.95), (196, 0.1)]


@pytest.mark.parametrize(("num", "ratio"), CASES)
def test_exact_number_of_masked_patches_per_sample(num: int, ratio: float) -> None:
    pm = random_masking(7, num, ratio, generator=torch.Generator().manual_seed(0))
    expected = num_masked_patches(num, ratio)
    assert expected == min(num - 1, max(1, round(num * ratio)))
    assert pm.mask.shape == (7, num)
    assert pm.mask.sum(1).tolist() == [float(expected)] * 7
    assert pm.ids_keep.shape == (7, num - expected)
    assert pm.num_masked == expected


def test_zero_ratio_masks_nothing_and_high_ratio_keeps_one() -> None:
    assert random_masking(3, 16, 0.0).mask.sum() == 0
    assert num_masked_patches(4, 0.95) == 3  # one patch always stays visible


def test_ids_restore_inverts_the_shuffle() -> None:
    g = torch.Generator().manual_seed(1)
    pm = random_masking(5, 20, 0.6, generator=g)
    tokens = torch.arange(20).float().view(1, 20, 1).expand(5, -1, 3)  # token i holds value i
    visible = gather_tokens(tokens, pm.ids_keep)
    filler = torch.full((5, pm.num_masked, 3), -1.0)
    restored = gather_tokens(torch.cat([visible, filler], 1), pm.ids_restore)
    keep = pm.mask == 0
    # visible tokens return to their own positions, removed ones hold the filler
    assert torch.equal(restored[..., 0][keep], tokens[..., 0][keep])
    assert (restored[..., 0][~keep] == -1).all()


def test_mask_polarity_one_means_removed() -> None:
    pm = random_masking(4, 16, 0.75, generator=torch.Generator().manual_seed(2))
    for b in range(4):
        assert pm.mask[b, pm.ids_keep[b]].eq(0).all()  # kept patches are 0
        assert pm.mask[b].sum() == 12  # 75 % removed, marked 1


def test_masks_differ_between_samples() -> None:
    pm = random_masking(8, 64, 0.75, generator=torch.Generator().manual_seed(3))
    assert len({tuple(row.tolist()) for row in pm.mask}) > 1


def test_patchify_layout_and_round_trip() -> None:
    x = torch.arange(2 * 3 * 8 * 8).float().view(2, 3, 8, 8)
    p = patchify(x, 4)
    assert p.shape == (2, 4, 48)
    # second patch (row 0, col 1), first pixel, channel order (p, p, C)
    assert p[0, 1, :3].tolist() == [x[0, c, 0, 4].item() for c in range(3)]
    assert torch.equal(unpatchify(p, 4, (2, 2)), x)


def test_upsample_mask_puts_patches_in_place() -> None:
    mask = torch.tensor([[0.0, 1.0, 0.0, 0.0]])
    up = upsample_mask(mask, (2, 2), (8, 8))
    assert up.shape == (1, 1, 8, 8)
    assert up[0, 0, :4, 4:].eq(1).all() and up.sum() == 16
