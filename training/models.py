"""The CycleGAN networks: the ResNet generator and the PatchGAN discriminator, with builders by name.

Architecture as in Zhu et al. 2017 (CycleGAN) and its reference implementation: generator c7s1-ngf, d(2ngf), d(4ngf),
``n_blocks`` residual blocks, u(2ngf), u(ngf), c7s1-out with reflection padding and InstanceNorm (affine=False),
weights initialised N(0, 0.02). The land-cover generator returns **logits** (``final="logits"``); softmax is applied
only where probabilities are needed (the class discriminator's input and the exported graph).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
from torch import nn

FINALS = ("tanh", "logits")
PATCHES = ("16", "30")

NormFactory = Callable[[int], nn.Module]
_instance_norm: NormFactory = functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)


class ResnetBlock(nn.Module):
    """Two reflection-padded 3x3 convolutions with InstanceNorm, added to the input."""

    def __init__(self, channels: int, norm: NormFactory = _instance_norm) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), norm(channels), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), norm(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    """CycleGAN ResNet generator (input H and W must be multiples of 4).

    Args:
        in_channels: input channels (14 one-hot classes, or 3 image bands).
        out_channels: output channels.
        ngf: filters of the first layer (64 in the paper; 32 is the compact CPU variant).
        n_blocks: residual blocks (9 for 256 px in the paper).
        final: ``"tanh"`` (image output in [-1, 1]) or ``"logits"`` (raw class scores).

    Raises:
        ValueError: on an unknown ``final`` or non-positive sizes.
    """

    def __init__(self, in_channels: int, out_channels: int, ngf: int = 64, n_blocks: int = 9,
                 final: str = "tanh") -> None:
        super().__init__()
        if final not in FINALS:
            raise ValueError(f"Unknown generator final {final!r}; choose one of {FINALS}.")
        if min(in_channels, out_channels, ngf) < 1 or n_blocks < 0:
            raise ValueError(f"Bad generator sizes: in={in_channels} out={out_channels} ngf={ngf} blocks={n_blocks}.")
        self.in_channels, self.out_channels, self.final = in_channels, out_channels, final
        norm = _instance_norm
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(in_channels, ngf, 7), norm(ngf), nn.ReLU(True)]
        for mult in (1, 2):  # downsampling: d(2ngf), d(4ngf)
            layers += [nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1), norm(ngf * mult * 2),
                       nn.ReLU(True)]
        layers += [ResnetBlock(ngf * 4, norm) for _ in range(n_blocks)]
        for mult in (4, 2):  # upsampling: u(2ngf), u(ngf)
            layers += [nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, stride=2, padding=1, output_padding=1),
                       norm(ngf * mult // 2), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_channels, 7)]
        if final == "tanh":
            layers.append(nn.Tanh())
        self.model = nn.Sequential(*layers)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class PatchDiscriminator(nn.Module):
    """PatchGAN discriminator: one raw score per overlapping patch (no final activation: LSGAN regresses it).

    ``patch="30"`` is the reference 70x70 PatchGAN (30x30 scores for a 256x256 input). ``patch="16"`` is the seed's
    variant: the 4th convolution strides by 2 as well and the last one is padded (1, 2) so that a 256x256 input gives
    16x16 scores; both have the same parameters (2.76 M for 3 input channels, ndf 64).
    """

    def __init__(self, in_channels: int, ndf: int = 64, patch: str = "16") -> None:
        super().__init__()
        if patch not in PATCHES:
            raise ValueError(f"Unknown discriminator patch {patch!r}; choose one of {PATCHES}.")
        norm = _instance_norm
        lrelu = functools.partial(nn.LeakyReLU, 0.2, True)
        stride4 = 2 if patch == "16" else 1
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, ndf, 4, stride=2, padding=1), lrelu(),
            nn.Conv2d(ndf, ndf * 2, 4, stride=2, padding=1), norm(ndf * 2), lrelu(),
            nn.Conv2d(ndf * 2, ndf * 4, 4, stride=2, padding=1), norm(ndf * 4), lrelu(),
            nn.Conv2d(ndf * 4, ndf * 8, 4, stride=stride4, padding=1), norm(ndf * 8), lrelu(),
        ]
        if patch == "16":
            layers += [nn.ZeroPad2d((1, 2, 1, 2)), nn.Conv2d(ndf * 8, 1, 4)]
        else:
            layers += [nn.Conv2d(ndf * 8, 1, 4, padding=1)]
        self.model = nn.Sequential(*layers)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def init_weights(module: nn.Module, gain: float = 0.02) -> None:
    """Reference "normal" init: conv weights N(0, gain), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def build_generator(name: str, in_channels: int, out_channels: int, **kwargs: object) -> nn.Module:
    """Build a generator by name (``"resnet"``); raises ValueError listing the choices on an unknown name."""
    builders = {"resnet": ResnetGenerator}
    if name not in builders:
        raise ValueError(f"Unknown generator {name!r}; choose one of {sorted(builders)}.")
    return builders[name](in_channels, out_channels, **kwargs)  # type: ignore[arg-type]


def build_discriminator(name: str, in_channels: int, **kwargs: object) -> nn.Module:
    """Build a discriminator by name (``"patchgan"``); raises ValueError listing the choices on an unknown name."""
    builders = {"patchgan": PatchDiscriminator}
    if name not in builders:
        raise ValueError(f"Unknown discriminator {name!r}; choose one of {sorted(builders)}.")
    return builders[name](in_channels, **kwargs)  # type: ignore[arg-type]
