"""CycleGAN losses: least-squares adversarial loss, masked cycle losses, and what D_lc is shown.

Why no final activation in the discriminators: LSGAN (Mao et al. 2017) regresses raw patch scores to 1 (real) and
0 (fake) with a mean squared error, so a sigmoid would only squash the gradients. Why no identity loss: it needs
``G(y) ~ y`` for ``y`` of the target domain, which is impossible when the two domains have different channel counts
(14 classes vs 3 bands).

The class cycle uses cross-entropy **on logits**. ``nn.CrossEntropyLoss`` applies log-softmax itself; fed softmax
*probabilities* (the seed's setup) it applies softmax twice, so even a perfect one-hot prediction costs
``ln(e + C - 1) - 1`` (1.755 nats for C = 14) and its gradients nearly vanish (see :func:`double_softmax_floor`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F  # noqa: N812 (the usual PyTorch alias)
from torch import nn

from .config import FAKE_LC_MODES


class LSGANLoss(nn.Module):
    """Mean squared error of patch scores against 1 (real) or 0 (fake); targets are buffers (follow ``.to``)."""

    def __init__(self, real_label: float = 1.0, fake_label: float = 0.0) -> None:
        super().__init__()
        self.register_buffer("real_label", torch.tensor(real_label))
        self.register_buffer("fake_label", torch.tensor(fake_label))

    def forward(self, scores: torch.Tensor, target_is_real: bool) -> torch.Tensor:
        target = self.real_label if target_is_real else self.fake_label
        scores = scores.float()
        return F.mse_loss(scores, target.expand_as(scores))


def masked_l1(prediction: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None,
              lowpass_px: int = 1) -> torch.Tensor:
    """Mean absolute error over valid pixels (``valid``: bool ``[N, H, W]``; None = all).

    ``lowpass_px`` > 1 compares ``lowpass_px`` x ``lowpass_px`` block means instead of pixels (blocks count only
    where every pixel is valid): the error then says nothing about texture finer than the blocks.
    """
    prediction, target = prediction.float(), target.float()
    if lowpass_px > 1:
        prediction = F.avg_pool2d(prediction, lowpass_px, ceil_mode=True)
        target = F.avg_pool2d(target, lowpass_px, ceil_mode=True)
        if valid is not None:
            valid = F.avg_pool2d(valid[:, None].float(), lowpass_px, ceil_mode=True)[:, 0] > 0.999
    diff = (prediction - target).abs()
    if valid is None:
        return diff.mean()
    weight = valid.unsqueeze(1).to(diff.dtype).expand_as(diff)
    return (diff * weight).sum() / weight.sum().clamp_min(1.0)


def masked_cross_entropy(logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """Cross-entropy of class **logits** ``[N, C, H, W]`` against indices ``[N, H, W]`` over valid pixels."""
    per_pixel = F.cross_entropy(logits.float(), target, reduction="none")
    if valid is None:
        return per_pixel.mean()
    weight = valid.to(per_pixel.dtype)
    return (per_pixel * weight).sum() / weight.sum().clamp_min(1.0)


def double_softmax_floor(num_classes: int) -> float:
    """Cross-entropy of a perfect one-hot *probability* map fed to a loss that expects logits: ln(e+C-1) - 1."""
    return math.log(math.e + num_classes - 1) - 1.0


def fake_lc_for_d(logits: torch.Tensor, mode: str, temperature: float = 1.0) -> torch.Tensor:
    """What D_lc (and the generator closing the RGB cycle) sees for a generated land-cover map.

    Args:
        logits: ``[N, C, H, W]`` class logits of G_rgb2lc.
        mode: ``"softmax"`` (probabilities), ``"gumbel_st"`` (straight-through Gumbel-softmax: a hard one-hot map
            forward, the soft Gumbel-softmax gradient backward) or ``"softmax_temp"`` (softmax of logits/temperature).
        temperature: Gumbel tau or softmax temperature.

    Raises:
        ValueError: on an unknown mode (listing the choices).
    """
    logits = logits.float()
    if mode == "softmax":
        return logits.softmax(dim=1)
    if mode == "softmax_temp":
        return (logits / temperature).softmax(dim=1)
    if mode == "gumbel_st":
        return F.gumbel_softmax(logits, tau=temperature, hard=True, dim=1)
    raise ValueError(f"Unknown fake_lc_for_d mode {mode!r}; choose one of {FAKE_LC_MODES}.")


def real_lc_for_d(one_hot: torch.Tensor, smoothing: float = 0.0, noise_std: float = 0.0,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """Real one-hot maps as D_lc sees them: optionally label-smoothed and/or noised (then renormalised to sum 1).

    Pixels that are nodata (all-zero one-hot) stay all zero.
    """
    out = one_hot.float()
    present = out.sum(dim=1, keepdim=True)
    if smoothing > 0:
        out = out * (1.0 - smoothing) + present * (smoothing / out.shape[1])
    if noise_std > 0:
        noise = torch.randn(out.shape, generator=generator, device=out.device, dtype=out.dtype) * noise_std
        out = (out + noise.abs()) * present
        out = out / out.sum(dim=1, keepdim=True).clamp_min(1e-6)
    return out
