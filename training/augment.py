"""Augmentations on torch batches: what G_rgb2lc reads is jittered in radiometry and scale; noise for G_lc2rgb.

Why only G_rgb2lc's input: the land-cover model must hold on imagery it has not seen (another date, sensor or
stretch: the engine's ``percentile`` radiometry maps each raster's own 2/98 % to [-1, 1], so a different mix of
classes shifts every value); the imagery discriminator and the reconstruction targets keep the plain windows, so
the imagery generator still learns the real imagery's colours. Random numbers come from torch's global generator,
whose state every checkpoint stores (resume stays exact).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F  # noqa: N812 (the usual PyTorch alias)


def radiometric_jitter(x: torch.Tensor, gain: float, offset: float, gamma: float) -> torch.Tensor:
    """Per-sample, per-band gain, offset and gamma on ``[N, B, H, W]`` images in [-1, 1] (a new tensor).

    On the [0, 1]-scaled values ``v``: ``gain_b * v ** gamma_b + offset_b``, clipped to [0, 1]; gain uniform in
    ``[1 - gain, 1 + gain]``, offset uniform in ``[-offset, offset]``, gamma log-uniform in ``[e^-gamma, e^gamma]``.
    """
    if not (gain or offset or gamma):
        return x
    shape = (x.shape[0], x.shape[1], 1, 1)

    def uniform(half_width: float) -> torch.Tensor:
        return (torch.rand(shape, device=x.device) * 2 - 1) * half_width

    v = ((x.float() + 1) * 0.5).clamp(0, 1)
    if gamma:
        v = v.clamp_min(1e-6) ** torch.exp(uniform(gamma))
    v = v * (1 + uniform(gain)) + uniform(offset)
    return (v.clamp(0, 1) * 2 - 1).to(x.dtype)


def random_scale(max_change: float) -> float:
    """A resize factor log-uniform in ``[1 / (1 + max_change), 1 + max_change]`` (1.0 when 0)."""
    if max_change <= 0:
        return 1.0
    limit = math.log1p(max_change)
    return math.exp((torch.rand(()).item() * 2 - 1) * limit)


def scaled_size(height: int, width: int, factor: float, multiple: int = 4) -> tuple[int, int]:
    """``(height, width) * factor`` rounded to multiples of ``multiple`` (at least one multiple)."""
    return (max(multiple, int(round(height * factor / multiple)) * multiple),
            max(multiple, int(round(width * factor / multiple)) * multiple))


def resize_image(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear (antialiased when shrinking) resize of ``[N, C, H, W]`` images."""
    if tuple(x.shape[-2:]) == size:
        return x
    return F.interpolate(x.float(), size=size, mode="bilinear", align_corners=False, antialias=True).to(x.dtype)


def resize_labels(labels: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Nearest-neighbour resize of ``[N, H, W]`` class indices or masks (dtype kept)."""
    if tuple(labels.shape[-2:]) == size:
        return labels
    out = F.interpolate(labels[:, None].float(), size=size, mode="nearest")[:, 0]
    return out.to(labels.dtype) if labels.dtype != torch.bool else out > 0.5


def with_noise(x: torch.Tensor, channels: int) -> torch.Tensor:
    """``x`` with ``channels`` extra N(0, 1) channels appended (the texture source of G_lc2rgb; 0 = ``x``)."""
    if channels <= 0:
        return x
    noise = torch.randn((x.shape[0], channels, *x.shape[2:]), device=x.device, dtype=x.dtype)
    return torch.cat([x, noise], dim=1)
