"""Multi-scale PatchGAN discriminators with their features (pix2pixHD, Wang et al. 2018).

:class:`MultiScaleDiscriminator` runs ``scales`` PatchGANs of the same shape (the seed's ``patch``), the first on
the input and each next one on the input average-pooled by 2 once more (3x3, stride 2, padding not counted), so
the coarse one judges the layout over a twice larger field and the fine one the texture. ``forward`` returns, per
scale, the list of every stage's activations, the last one being the raw patch scores (LSGAN: no activation):
the generator's feature-matching loss compares the earlier ones between a real image and the painting of its map.
To see the map, the caller concatenates the map (+ terrain) channels to the image (``model.d_sees_map``).
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F  # noqa: N812 (the usual PyTorch alias)
from torch import nn

from .layers import init_weights

PATCHES = ("16", "30")


class FeaturePatchDiscriminator(nn.Module):
    """The PatchGAN of :class:`training.models.PatchDiscriminator`, in stages whose outputs are all returned."""

    def __init__(self, in_channels: int, ndf: int = 64, patch: str = "16") -> None:
        super().__init__()
        if patch not in PATCHES:
            raise ValueError(f"Unknown discriminator patch {patch!r}; choose one of {PATCHES}.")
        norm = functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)
        lrelu = functools.partial(nn.LeakyReLU, 0.2, True)
        stride4 = 2 if patch == "16" else 1
        last: list[nn.Module] = ([nn.ZeroPad2d((1, 2, 1, 2)), nn.Conv2d(ndf * 8, 1, 4)] if patch == "16"
                                 else [nn.Conv2d(ndf * 8, 1, 4, padding=1)])
        self.stages = nn.ModuleList([
            nn.Sequential(nn.Conv2d(in_channels, ndf, 4, stride=2, padding=1), lrelu()),
            nn.Sequential(nn.Conv2d(ndf, ndf * 2, 4, stride=2, padding=1), norm(ndf * 2), lrelu()),
            nn.Sequential(nn.Conv2d(ndf * 2, ndf * 4, 4, stride=2, padding=1), norm(ndf * 4), lrelu()),
            nn.Sequential(nn.Conv2d(ndf * 4, ndf * 8, 4, stride=stride4, padding=1), norm(ndf * 8), lrelu()),
            nn.Sequential(*last),
        ])
        init_weights(self)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for stage in self.stages:
            x = stage(x)
            out.append(x)
        return out


class MultiScaleDiscriminator(nn.Module):
    """``scales`` :class:`FeaturePatchDiscriminator` s on x, x/2, x/4, ...; returns per scale its stage outputs."""

    def __init__(self, in_channels: int, ndf: int = 64, patch: str = "16", scales: int = 2) -> None:
        super().__init__()
        if scales < 1:
            raise ValueError(f"A multi-scale discriminator needs at least 1 scale, got {scales}.")
        self.nets = nn.ModuleList([FeaturePatchDiscriminator(in_channels, ndf, patch) for _ in range(scales)])

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        out = []
        for i, net in enumerate(self.nets):
            if i:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            out.append(net(x))
        return out


def as_scales(outputs: torch.Tensor | list[list[torch.Tensor]]) -> list[list[torch.Tensor]]:
    """Any discriminator's output as per-scale stage lists (a plain PatchGAN's scores: one scale, one stage)."""
    return [[outputs]] if isinstance(outputs, torch.Tensor) else outputs


def feature_matching(fake: list[list[torch.Tensor]], real: list[list[torch.Tensor]]) -> torch.Tensor:
    """pix2pixHD's loss: mean over scales and stages (the scores excluded) of the L1 between fake and real
    activations (``real`` is detached here)."""
    terms = [F.l1_loss(f.float(), r.detach().float()) for fs, rs in zip(fake, real, strict=True)
             for f, r in zip(fs[:-1], rs[:-1], strict=True)]
    if not terms:
        raise ValueError("Feature matching needs a discriminator with features (model.discriminator multiscale).")
    return torch.stack(terms).mean()
