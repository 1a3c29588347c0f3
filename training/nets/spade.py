"""The SPADE generator for land cover (+ terrain) -> imagery (Park et al. 2019, "Semantic Image Synthesis with
Spatially-Adaptive Normalization"), sized for a CPU and for the engine's tiling.

Layout (``ngf`` = 32, ``n_blocks`` = 6: about 2.6 M parameters), one input tensor as the contract has it: the map
channels (one-hot classes, then any terrain channels) and then ``noise_channels`` noise channels:

* head: 7x7 convolution of the whole input, two stride-2 convolutions each after a :class:`~.layers.Blur`
  (anti-aliased downsampling) to 1/4 resolution, BatchNorm + ReLU after each;
* ``n_blocks`` SPADE residual blocks at 1/4 resolution: ``x + conv(relu(spade(conv(relu(spade(x)))) + noise)``;
* two x2 stages: :class:`~.layers.BlurUpsample`, 3x3 convolution, SPADE, per-layer noise, ReLU;
* tail: 7x7 convolution, tanh, and optionally the fixed checkerboard notch (trained in the loop when configured).

SPADE (:class:`Spade`): a parameter-free BatchNorm (running statistics at inference, so no per-window statistics)
whose per-pixel scale and shift come from 3x3 convolutions of the map. The map is read once per resolution
(:class:`MapFeatures`: 2x2 / 4x4 block means of the map channels, a shared 3x3 convolution + ReLU), and every SPADE
layer at that resolution has its own scale and shift convolutions. Block means at 1/2 and 1/4 resolution are the
same operation as the stride-2 convolutions of the head: the generator stays exact under any tiling whose tile
origins are multiples of 4 (the contract's ``size_multiple_px``).

Per-layer noise (:class:`~.layers.NoiseInjection`) is derived inside the graph from the input noise channels, so
the engine's position-keyed noise drives every layer and tiling stays exact.
"""

from __future__ import annotations

import torch
from torch import nn

from .layers import Blur, BlurUpsample, NoiseInjection, init_weights, output_tail, pooled_noise

SPADE_HIDDEN = 32


class MapFeatures(nn.Module):
    """The map at 1/``factor`` resolution (block means) through a shared 3x3 convolution + ReLU."""

    def __init__(self, map_channels: int, factor: int, hidden: int = SPADE_HIDDEN) -> None:
        super().__init__()
        self.factor = factor
        self.conv = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(map_channels, hidden, 3), nn.ReLU(True))

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        if self.factor > 1:
            maps = nn.functional.avg_pool2d(maps, self.factor)
        return self.conv(maps)


class Spade(nn.Module):
    """``bn(x) * (1 + gamma(features)) + beta(features)``, BatchNorm without affine parameters."""

    def __init__(self, channels: int, hidden: int = SPADE_HIDDEN) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, affine=False)
        self.gamma = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(hidden, channels, 3))
        self.beta = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(hidden, channels, 3))

    def forward(self, x: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        return self.norm(x) * (1 + self.gamma(features)) + self.beta(features)


class SpadeResBlock(nn.Module):
    """SPADE -> ReLU -> 3x3 conv -> noise, twice, added to the input (the channel count stays)."""

    def __init__(self, channels: int, noise_channels: int) -> None:
        super().__init__()
        self.spade1, self.spade2 = Spade(channels), Spade(channels)
        self.conv1 = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3))
        self.conv2 = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3))
        self.noise1 = NoiseInjection(noise_channels, channels) if noise_channels else None
        self.noise2 = NoiseInjection(noise_channels, channels) if noise_channels else None

    def forward(self, x: torch.Tensor, features: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
        h = self.conv1(torch.relu(self.spade1(x, features)))
        if self.noise1 is not None and noise is not None:
            h = self.noise1(h, noise)
        h = self.conv2(torch.relu(self.spade2(h, features)))
        if self.noise2 is not None and noise is not None:
            h = self.noise2(h, noise)
        return x + h


class SpadeUp(nn.Module):
    """x2 stage: blurred upsampling, 3x3 convolution, SPADE, noise, ReLU."""

    def __init__(self, in_channels: int, out_channels: int, noise_channels: int) -> None:
        super().__init__()
        self.up = BlurUpsample(in_channels)
        self.conv = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(in_channels, out_channels, 3))
        self.spade = Spade(out_channels)
        self.noise = NoiseInjection(noise_channels, out_channels) if noise_channels else None

    def forward(self, x: torch.Tensor, features: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
        h = self.spade(self.conv(self.up(x)), features)
        if self.noise is not None and noise is not None:
            h = self.noise(h, noise)
        return torch.relu(h)


class SpadeGenerator(nn.Module):
    """Land cover (+ terrain) + noise -> image, SPADE-modulated at every layer (input H and W multiples of 4).

    Args:
        in_channels: all input channels (map channels + ``noise_channels``).
        out_channels: image bands.
        ngf: filters of the first layer (32: the compact CPU size).
        n_blocks: SPADE residual blocks at 1/4 resolution.
        final: ``"tanh"`` only (an image generator).
        noise_channels: the last input channels that are noise (0: no per-layer noise).
        output_filter: ``"none"`` or ``"checkerboard_null"`` (trained in the loop: it is part of the module).

    Raises:
        ValueError: a ``final`` other than tanh, no map channels, or non-positive sizes.
    """

    def __init__(self, in_channels: int, out_channels: int, ngf: int = 32, n_blocks: int = 6, final: str = "tanh",
                 noise_channels: int = 0, output_filter: str = "none", **_unused: object) -> None:
        super().__init__()
        map_channels = in_channels - noise_channels
        if final != "tanh":
            raise ValueError(f"The spade generator paints imagery (final 'tanh'), not {final!r}; read imagery with "
                             "model.rgb2lc_generator resnet or unet.")
        if map_channels < 1 or min(out_channels, ngf) < 1 or n_blocks < 0 or noise_channels < 0:
            raise ValueError(f"Bad spade generator sizes: in={in_channels} (noise {noise_channels}) "
                             f"out={out_channels} ngf={ngf} blocks={n_blocks}.")
        self.in_channels, self.out_channels, self.final = in_channels, out_channels, final
        self.map_channels, self.noise_channels = map_channels, noise_channels
        self.head = nn.Sequential(
            nn.ReflectionPad2d(3), nn.Conv2d(in_channels, ngf, 7), nn.BatchNorm2d(ngf), nn.ReLU(True),
            Blur(ngf), nn.Conv2d(ngf, ngf * 2, 3, stride=2, padding=1), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
            Blur(ngf * 2), nn.Conv2d(ngf * 2, ngf * 4, 3, stride=2, padding=1), nn.BatchNorm2d(ngf * 4),
            nn.ReLU(True),
        )
        self.features = nn.ModuleList([MapFeatures(map_channels, f) for f in (4, 2, 1)])
        self.blocks = nn.ModuleList([SpadeResBlock(ngf * 4, noise_channels) for _ in range(n_blocks)])
        self.up = nn.ModuleList([SpadeUp(ngf * 4, ngf * 2, noise_channels), SpadeUp(ngf * 2, ngf, noise_channels)])
        self.tail = nn.Sequential(*output_tail(ngf, out_channels, "tanh", output_filter))
        init_weights(self)
        for module in self.modules():
            if isinstance(module, NoiseInjection):
                module.reset()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        maps = x[:, : self.map_channels]
        noise = x[:, self.map_channels:] if self.noise_channels else None
        f4, f2, f1 = (features(maps) for features in self.features)
        n4 = pooled_noise(noise, 4) if noise is not None else None
        h = self.head(x)
        for block in self.blocks:
            h = block(h, f4, n4)
        h = self.up[0](h, f2, pooled_noise(noise, 2) if noise is not None else None)
        h = self.up[1](h, f1, noise)
        return self.tail(h)
