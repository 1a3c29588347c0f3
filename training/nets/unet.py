"""Imagery -> land cover: the compact ResNet generator with encoder -> decoder skip connections (a U-Net).

The reference CycleGAN's ``unet_256`` is the precedent; its eight stride-2 levels would need 256 px-aligned tiles,
so this one keeps the ResNet generator's two levels (tiles aligned to 4 px, as the contract's ``size_multiple_px``)
and its residual blocks at 1/4 resolution, and concatenates the full- and half-resolution encoder features into
the decoder: class boundaries come from the full-resolution pixels instead of being rebuilt from 1/4 resolution.
BatchNorm with running statistics (a pure convolutional function at inference); blurred x2 upsampling.
"""

from __future__ import annotations

import torch
from torch import nn

from .layers import Blur, BlurUpsample, ResnetBlock, init_weights, output_tail

FINALS = ("tanh", "logits")


def _conv(in_channels: int, out_channels: int, kernel: int = 3) -> list[nn.Module]:
    return [nn.ReflectionPad2d(kernel // 2), nn.Conv2d(in_channels, out_channels, kernel),
            nn.BatchNorm2d(out_channels), nn.ReLU(True)]


class UnetGenerator(nn.Module):
    """ResNet-style encoder-decoder with skips (input H and W multiples of 4).

    Args:
        in_channels: input channels (3 image bands, or a map).
        out_channels: output channels.
        ngf: filters at full resolution (2ngf at 1/2, 4ngf at 1/4).
        n_blocks: residual blocks at 1/4 resolution.
        final: ``"logits"`` (class scores) or ``"tanh"``.
        output_filter: ``"none"`` or ``"checkerboard_null"`` (tanh only).

    Raises:
        ValueError: an unknown ``final`` or non-positive sizes.
    """

    def __init__(self, in_channels: int, out_channels: int, ngf: int = 32, n_blocks: int = 6,
                 final: str = "logits", output_filter: str = "none", **_unused: object) -> None:
        super().__init__()
        if final not in FINALS or (output_filter != "none" and final != "tanh") or output_filter not in (
                "none", "checkerboard_null"):
            raise ValueError(f"Unknown final/output_filter {final!r}/{output_filter!r}; finals {FINALS}, filters "
                             "'none' or 'checkerboard_null' (image generators only).")
        if min(in_channels, out_channels, ngf) < 1 or n_blocks < 0:
            raise ValueError(f"Bad unet sizes: in={in_channels} out={out_channels} ngf={ngf} blocks={n_blocks}.")
        self.in_channels, self.out_channels, self.final = in_channels, out_channels, final
        self.enc1 = nn.Sequential(*_conv(in_channels, ngf, 7))
        self.enc2 = nn.Sequential(Blur(ngf), nn.Conv2d(ngf, ngf * 2, 3, stride=2, padding=1),
                                  nn.BatchNorm2d(ngf * 2), nn.ReLU(True))
        self.enc3 = nn.Sequential(Blur(ngf * 2), nn.Conv2d(ngf * 2, ngf * 4, 3, stride=2, padding=1),
                                  nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
                                  *[ResnetBlock(ngf * 4, nn.BatchNorm2d) for _ in range(n_blocks)])
        self.up2 = nn.Sequential(BlurUpsample(ngf * 4), *_conv(ngf * 4, ngf * 2))
        self.dec2 = nn.Sequential(*_conv(ngf * 4, ngf * 2))
        self.up1 = nn.Sequential(BlurUpsample(ngf * 2), *_conv(ngf * 2, ngf))
        self.dec1 = nn.Sequential(*_conv(ngf * 2, ngf))
        self.tail = nn.Sequential(*output_tail(ngf, out_channels, final, output_filter))
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e1 = self.enc1(x)
        e2 = self.enc2(e1)
        h = self.enc3(e2)
        h = self.dec2(torch.cat([self.up2(h), e2], dim=1))
        h = self.dec1(torch.cat([self.up1(h), e1], dim=1))
        return self.tail(h)
