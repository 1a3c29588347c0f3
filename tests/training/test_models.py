"""Network shapes and sizes: the seed's numbers (11.41 M, 2.76 M, 16x16) and the reference 30x30 PatchGAN."""

from __future__ import annotations

import pytest
import torch

from training.models import (
    PatchDiscriminator,
    ResnetGenerator,
    build_discriminator,
    build_generator,
    count_parameters,
)


def test_full_size_generator_has_the_seeds_parameter_count() -> None:
    g = ResnetGenerator(14, 3, ngf=64, n_blocks=9)
    assert count_parameters(g) == pytest.approx(11.41e6, rel=0.005)
    assert count_parameters(ResnetGenerator(3, 14)) == pytest.approx(11.41e6, rel=0.005)


@pytest.mark.parametrize(("patch", "side"), [("16", 16), ("30", 30)])
def test_discriminator_patch_output_at_256(patch: str, side: int) -> None:
    d = PatchDiscriminator(3, patch=patch)
    assert count_parameters(d) == pytest.approx(2.76e6, rel=0.005)
    with torch.no_grad():
        assert d(torch.zeros(1, 3, 256, 256)).shape == (1, 1, side, side)
    assert PatchDiscriminator(14, patch=patch)(torch.zeros(2, 14, 256, 256)).shape == (2, 1, side, side)


def test_generator_finals_and_dynamic_size() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 3, 36, 44) * 3
    with torch.no_grad():
        tanh = ResnetGenerator(3, 3, ngf=8, n_blocks=2, final="tanh")(x)
        logits = ResnetGenerator(3, 14, ngf=8, n_blocks=2, final="logits")(x)
    assert tanh.shape == (2, 3, 36, 44) and tanh.abs().max() <= 1.0
    assert logits.shape == (2, 14, 36, 44)


def test_init_is_normal_0_002() -> None:
    g = ResnetGenerator(14, 3, ngf=16, n_blocks=2)
    w = torch.cat([m.weight.flatten() for m in g.modules() if isinstance(m, torch.nn.Conv2d)])
    assert abs(w.mean().item()) < 2e-3 and w.std().item() == pytest.approx(0.02, rel=0.05)


def test_builders_reject_unknown_names_listing_choices() -> None:
    with pytest.raises(ValueError, match="resnet"):
        build_generator("unet_256", 3, 3)
    with pytest.raises(ValueError, match="patchgan"):
        build_discriminator("pixel", 3)
    with pytest.raises(ValueError, match="tanh"):
        ResnetGenerator(3, 3, final="softmax")
    with pytest.raises(ValueError, match="'16'"):
        PatchDiscriminator(3, patch="70")
