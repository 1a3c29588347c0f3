"""Losses: cross-entropy on logits has no floor (the seed's double softmax has 1.755 nats), what D_lc sees."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F  # noqa: N812

from training.losses import (
    LSGANLoss,
    double_softmax_floor,
    fake_lc_for_d,
    masked_cross_entropy,
    masked_l1,
    real_lc_for_d,
)


def _perfect_logits(target: torch.Tensor, classes: int = 14, margin: float = 30.0) -> torch.Tensor:
    return F.one_hot(target, classes).permute(0, 3, 1, 2).float() * margin


def test_class_cycle_loss_of_a_perfect_prediction_is_near_zero() -> None:
    target = torch.randint(0, 14, (2, 16, 16), generator=torch.Generator().manual_seed(0))
    assert masked_cross_entropy(_perfect_logits(target), target).item() < 1e-6


def test_cross_entropy_on_softmax_output_has_the_1755_nat_floor() -> None:
    target = torch.randint(0, 14, (2, 16, 16), generator=torch.Generator().manual_seed(0))
    probabilities = _perfect_logits(target).softmax(dim=1)  # what the seed fed nn.CrossEntropyLoss
    seed_loss = torch.nn.CrossEntropyLoss()(probabilities, target).item()
    assert double_softmax_floor(14) == pytest.approx(1.755, abs=1e-3)
    assert seed_loss == pytest.approx(double_softmax_floor(14), abs=1e-4)


def test_masked_losses_ignore_invalid_pixels() -> None:
    target = torch.zeros(1, 3, 4, 4)
    prediction = target.clone()
    prediction[..., 0, :] = 5.0  # wrong only in row 0
    valid = torch.ones(1, 4, 4, dtype=torch.bool)
    assert masked_l1(prediction, target, valid).item() > 0
    valid[:, 0, :] = False
    assert masked_l1(prediction, target, valid).item() == 0.0
    labels = torch.zeros(1, 4, 4, dtype=torch.long)
    logits = _perfect_logits(labels, 3)
    logits[:, :, 0, :] = torch.tensor([0.0, 30.0, 0.0])[None, :, None]
    assert masked_cross_entropy(logits, labels, valid).item() < 1e-6
    assert masked_cross_entropy(logits, labels).item() > 1.0


def test_gumbel_st_is_one_hot_forward_with_soft_gradients() -> None:
    torch.manual_seed(0)
    logits = torch.randn(2, 14, 8, 8, requires_grad=True)
    hard = fake_lc_for_d(logits, "gumbel_st")
    assert torch.equal(hard.sum(1), torch.ones(2, 8, 8))
    assert set(hard.unique().tolist()) == {0.0, 1.0}
    (hard * torch.randn_like(hard)).sum().backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0


def test_softmax_modes_and_unknown_mode() -> None:
    logits = torch.randn(1, 14, 4, 4)
    soft = fake_lc_for_d(logits, "softmax")
    sharp = fake_lc_for_d(logits, "softmax_temp", temperature=0.1)
    assert torch.allclose(soft.sum(1), torch.ones(1, 4, 4))
    assert sharp.max(1).values.mean() > soft.max(1).values.mean()
    with pytest.raises(ValueError, match="gumbel_st"):
        fake_lc_for_d(logits, "hard")


def test_real_maps_smoothing_and_noise_keep_a_distribution_and_nodata() -> None:
    labels = torch.randint(0, 14, (1, 8, 8))
    one_hot = F.one_hot(labels, 14).permute(0, 3, 1, 2).float()
    one_hot[..., 0, :] = 0.0  # nodata row
    out = real_lc_for_d(one_hot, smoothing=0.2, noise_std=0.1, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(out[..., 1:, :].sum(1), torch.ones(1, 7, 8), atol=1e-5)
    assert out[..., 0, :].abs().sum() == 0
    assert out.max() < 1.0 and out.min() >= 0.0
    assert torch.equal(real_lc_for_d(one_hot), one_hot)


def test_lsgan_targets_are_buffers_and_the_loss_is_mse() -> None:
    loss = LSGANLoss().to(torch.float64)
    assert {name for name, _ in loss.named_buffers()} == {"real_label", "fake_label"}
    scores = torch.full((1, 1, 4, 4), 0.25)
    assert loss(scores, True).item() == pytest.approx(0.5625)
    assert loss(scores, False).item() == pytest.approx(0.0625)
    assert not math.isnan(loss(scores.bfloat16(), True).item())
