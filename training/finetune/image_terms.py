"""The image model's training terms in fine-tuning: the paired low-pass L1, a discriminator that sees the map, and
a diversity term between two noise draws.

- *Low-pass L1* (the bundled recipe's paired term): the L1 of 4x4 block means against the imagery, on blocks whose
  pixels are all labelled. It fixes each class's colour and leaves texture free.
- *Adversarial* (``--adversarial-weight``): a two-scale PatchGAN (pix2pixHD, Wang et al. 2018) that reads the image
  beside the map's one-hot classes, least-squares loss; optionally (``--feature-match-weight``) pix2pixHD's feature
  matching between a real window and the painting of its own map, a paired term that pulls towards the mean image.
  It is what judges texture, which the L1 cannot.
- *Diversity* (``--diversity-weight``): each map is painted from two noise draws and the generator is rewarded for
  the mean absolute difference of their 4x4 block means, capped (DSGAN, Yang et al. 2019, bounds the mode-seeking
  term of Mao et al. 2019 the same way): beyond the cap the term stops pushing, so the variation stays at the scale
  of texture and the classes' layout stays the map's. Block means, not pixels, so that louder pixel grain does not
  count as diversity.
"""

from __future__ import annotations

import torch
from torch import nn

from ..nets.discriminators import MultiScaleDiscriminator, as_scales, feature_matching

#: Block size (px) of the paired L1 and of the diversity measure.
POOL = 4
#: Where the diversity term stops pushing: the block means' mean absolute difference in [-1, 1] units (0.1 = 12.75
#: of 255 DN before the radiometry's stretch).
SPREAD_CAP = 0.1
#: Adam betas of the discriminator (the reference CycleGAN's).
BETAS = (0.5, 0.999)
#: Discriminator width: half the seed's PatchGAN (a CPU budget; it judges 128 px windows).
NDF = 32


def map_discriminator(n_classes: int, window_px: int) -> nn.Module:
    """A fresh PatchGAN over RGB + the map's ``n_classes`` one-hot channels: two scales, or one on windows under
    64 px (its last normalised stage needs more than 1 x 1 px at 1/32 of the window)."""
    return MultiScaleDiscriminator(3 + n_classes, ndf=NDF, scales=2 if window_px >= 64 else 1)


def lowpass_l1_sums(fake: torch.Tensor, real: torch.Tensor, labelled: torch.Tensor) -> tuple[torch.Tensor,
                                                                                             torch.Tensor]:
    """(sum, count) of the L1 of ``POOL`` x ``POOL`` block means (mean over bands) over the blocks whose pixels are
    all labelled (``labelled``: (B, 1, H, W) of 0 / 1): sums, so that a validation can pool many windows."""
    pooled_ok = (nn.functional.avg_pool2d(labelled, POOL) > 0.999).float()
    diff = (nn.functional.avg_pool2d(fake, POOL) - nn.functional.avg_pool2d(real, POOL)).abs().mean(1, keepdim=True)
    return (diff * pooled_ok).sum(), pooled_ok.sum()


def lowpass_l1(fake: torch.Tensor, real: torch.Tensor, labelled: torch.Tensor) -> torch.Tensor:
    """The mean of :func:`lowpass_l1_sums` (0 without a fully labelled block)."""
    total, count = lowpass_l1_sums(fake, real, labelled)
    return total / count.clamp(min=1.0)


def spread(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of two paintings' ``POOL`` x ``POOL`` block means."""
    return (nn.functional.avg_pool2d(first, POOL) - nn.functional.avg_pool2d(second, POOL)).abs().mean()


def _scores(judged: list[list[torch.Tensor]]) -> list[torch.Tensor]:
    return [stages[-1].float() for stages in as_scales(judged)]


def generator_terms(judged_fake: list[list[torch.Tensor]], judged_real: list[list[torch.Tensor]] | None,
                    draws: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(least-squares adversarial loss, feature matching) of the paintings; ``draws`` paintings per real window,
    each matched against its window's real features (``judged_real`` None: no feature matching, 0)."""
    gan = torch.stack([((s - 1.0) ** 2).mean() for s in _scores(judged_fake)]).mean()
    if judged_real is None:
        return gan, torch.zeros((), device=gan.device)
    real = [[t.repeat(draws, 1, 1, 1) for t in stages] for stages in as_scales(judged_real)]
    return gan, feature_matching(as_scales(judged_fake), real)


def discriminator_loss(d: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Least-squares loss of the discriminator: real windows towards 1, paintings (detached) towards 0."""
    on_real = torch.stack([((s - 1.0) ** 2).mean() for s in _scores(d(real))]).mean()
    on_fake = torch.stack([(s ** 2).mean() for s in _scores(d(fake))]).mean()
    return 0.5 * (on_real + on_fake)
