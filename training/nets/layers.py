"""Fixed anti-aliasing filters and per-layer noise, the building blocks the label-map generators share.

* :class:`BlurUpsample`: nearest x2 then the fixed ``[1, 2, 1] x [1, 2, 1] / 16`` blur, together the
  ``[1, 3, 3, 1]`` interpolation filter of StyleGAN2's upsampling; its response at the period-2 frequencies is 0,
  so no layer after it inherits a checkerboard from the resize.
* :class:`Blur`: the same blur alone, put before a stride-2 convolution (the cheap form of Zhang 2019's BlurPool:
  the subsampling then folds no period-2 energy into the low frequencies).
* :class:`NoiseInjection`: StyleGAN-style noise per layer with a learned per-channel scale, initialised at 0.
  The noise is the generator's own input noise channels (what the engine feeds from each pixel's position in the
  whole raster), summed over ``f x f`` blocks and divided by ``f`` to keep unit variance at 1/f resolution, then
  mixed to the layer's channels by a 1x1 convolution without bias. No random number is drawn inside the graph, so
  every tiling of a raster gets the same noise at the same place.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
import torch.nn.functional as F  # noqa: N812 (the usual PyTorch alias)
from torch import nn

NormFactory = Callable[[int], nn.Module]
instance_norm: NormFactory = functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)


class ResnetBlock(nn.Module):
    """Two reflection-padded 3x3 convolutions with a normalisation (InstanceNorm by default), added to the input."""

    def __init__(self, channels: int, norm: NormFactory = instance_norm) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), norm(channels), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), norm(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


_BLUR_1D = torch.tensor([1.0, 2.0, 1.0]) / 4.0


class Blur(nn.Module):
    """Depthwise reflection-padded ``[1, 2, 1]`` x ``[1, 2, 1]`` / 16 blur (no weights; a non-persistent buffer)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        kernel = torch.outer(_BLUR_1D, _BLUR_1D)
        self.register_buffer("kernel", kernel.expand(channels, 1, 3, 3).clone(), persistent=False)
        self.channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padded = F.pad(x, (1, 1, 1, 1), mode="reflect")
        return F.conv2d(padded, self.kernel.to(x.dtype), groups=self.channels)


class BlurUpsample(nn.Module):
    """x2 nearest resize followed by :class:`Blur`, computed as the bilinear x2 resize it equals.

    Nearest x2 then ``[1, 2, 1] / 4`` (reflection padded) gives ``(x[i-1] + 3 x[i]) / 4`` and ``(3 x[i] + x[i+1]) / 4``
    with the edge value repeated at the borders: exactly bilinear interpolation with ``align_corners=False``
    (``tests/training/test_nets.py`` checks it), which runs about 4x faster on the CPU than a depthwise blur.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)


class CheckerboardNull(nn.Module):
    """Fixed per-band 3x3 notch at the (-1)^(row + col) pattern (reflection padded, no weights), clamped to [-1, 1].

    The kernel is a non-persistent buffer: checkpoints of generators without the filter load into ones with it.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        kernel = torch.tensor([[-1.0, 2.0, -1.0], [2.0, 12.0, 2.0], [-1.0, 2.0, -1.0]]) / 16.0
        self.register_buffer("kernel", kernel.expand(channels, 1, 3, 3).clone(), persistent=False)
        self.channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padded = nn.functional.pad(x, (1, 1, 1, 1), mode="reflect")
        return nn.functional.conv2d(padded, self.kernel.to(x.dtype), groups=self.channels).clamp(-1.0, 1.0)


def init_weights(module: nn.Module, gain: float = 0.02) -> None:
    """Reference "normal" init: conv weights N(0, gain), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def pooled_noise(noise: torch.Tensor, factor: int) -> torch.Tensor:
    """Unit-variance noise at 1/``factor`` resolution: block sums of ``noise`` divided by ``factor``."""
    if factor == 1:
        return noise
    return F.avg_pool2d(noise, factor) * float(factor)


class NoiseInjection(nn.Module):
    """``x + conv1x1(noise)``: the input noise channels mixed to ``channels`` with learned weights (zero at init)."""

    def __init__(self, noise_channels: int, channels: int) -> None:
        super().__init__()
        self.mix = nn.Conv2d(noise_channels, channels, 1, bias=False)
        self.reset()

    def reset(self) -> None:
        """Zero the mixing weights (call after a whole-network init: the layer starts as the identity)."""
        nn.init.zeros_(self.mix.weight)

    def forward(self, x: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return x + self.mix(noise.to(x.dtype))


def output_tail(ngf: int, out_channels: int, final: str, output_filter: str) -> list[nn.Module]:
    """A generator's last layers: reflection-padded 7x7 convolution, tanh for images (``final="tanh"``; logits
    otherwise), then the fixed checkerboard notch when ``output_filter="checkerboard_null"``.

    Raises:
        ValueError: an unknown ``output_filter``.
    """
    if output_filter not in ("none", "checkerboard_null"):
        raise ValueError(f"Unknown output_filter {output_filter!r}; choose 'none' or 'checkerboard_null'.")
    tail: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_channels, 7)]
    if final == "tanh":
        tail.append(nn.Tanh())
    if output_filter == "checkerboard_null":
        tail.append(CheckerboardNull(out_channels))
    return tail
