"""The image model's fine-tuning terms (``training/finetune/image_terms.py``): the low-pass L1 and the diversity
measure on controlled inputs whose answer is known, the discriminator learning to separate, and real fine-tuning
steps with ``--adversarial-weight`` / ``--diversity-weight`` / ``--landcover-weight 0`` that checkpoint and resume
the discriminator."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.training.test_finetune_second_gen import region, tiny  # noqa: F401 (fixtures)
from training.errors import TrainingError
from training.finetune import image_terms
from training.finetune.run import FineTune, Settings


def _grain(shape: tuple[int, ...], amplitude: float) -> torch.Tensor:
    """A zero-mean pattern inside every 4x4 block (+a / -a on alternate columns)."""
    grain = torch.full(shape, amplitude)
    grain[..., 1::2] = -amplitude
    return grain


def test_lowpass_l1_sees_block_means_on_labelled_blocks_only() -> None:
    real = torch.rand(2, 3, 16, 16) * 2 - 1
    labelled = torch.ones(2, 1, 16, 16)
    assert float(image_terms.lowpass_l1(real + 0.3, real, labelled)) == pytest.approx(0.3, abs=1e-5)
    assert float(image_terms.lowpass_l1(real + _grain(real.shape, 0.5), real, labelled)) == pytest.approx(0, abs=1e-6)
    off = real.clone()
    off[:, :, :4, :4] += 1.0  # one block far off ...
    labelled[:, :, 0, 0] = 0  # ... with one unlabelled pixel: the block does not count
    assert float(image_terms.lowpass_l1(off, real, labelled)) == pytest.approx(0, abs=1e-6)


def test_spread_counts_block_scale_differences_not_pixel_grain() -> None:
    first = torch.rand(2, 3, 16, 16) * 2 - 1
    assert float(image_terms.spread(first, first)) == 0.0
    assert float(image_terms.spread(first, first + _grain(first.shape, 0.4))) == pytest.approx(0, abs=1e-6)
    second = first.clone()
    second[..., :8, :] += 0.2  # half the image brighter: mean block difference 0.1
    assert float(image_terms.spread(first, second)) == pytest.approx(0.1, abs=1e-5)


def test_the_map_discriminator_learns_to_separate_and_feature_matching_is_zero_on_identity() -> None:
    torch.manual_seed(0)
    k = 3
    d = image_terms.map_discriminator(k, 32)
    assert len(d.nets) == 1 and len(image_terms.map_discriminator(k, 64).nets) == 2
    opt = torch.optim.Adam(d.parameters(), lr=2e-4, betas=image_terms.BETAS)
    maps = torch.zeros(4, k, 32, 32)
    maps[:, 0] = 1.0
    real = torch.cat([torch.rand(4, 3, 32, 32) * 2 - 1, maps], 1)  # textured
    fake = torch.cat([torch.zeros(4, 3, 32, 32), maps], 1)  # flat
    first = float(image_terms.discriminator_loss(d, real, fake).detach())
    for _ in range(30):
        loss = image_terms.discriminator_loss(d, real, fake)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(image_terms.discriminator_loss(d, real, fake).detach()) < 0.5 * first
    with torch.no_grad():
        judged_real = d(real)
        gan, fm = image_terms.generator_terms(d(real.repeat(2, 1, 1, 1)), judged_real, draws=2)
        assert float(fm) == pytest.approx(0.0, abs=1e-6)  # each painting matched against its own window's features
        assert float(gan) >= 0.0
        _, fm_fake = image_terms.generator_terms(d(fake.repeat(2, 1, 1, 1)), judged_real, draws=2)
        assert float(fm_fake) > 0.01


def _settings(tiny: Path, region: dict[str, Path], out: Path, **changes: object) -> Settings:  # noqa: F811
    fields = dict(base=str(tiny), imagery=[str(region["image"])], landcover=[str(region["lc"])], out=str(out),
                  steps=2, crop=32, batch=2, threads=1, int8=False, val_every_s=1e9, precision="fp32",
                  landcover_weight=0.0, adversarial_weight=1.0, diversity_weight=1.0, feature_match_weight=1.0)
    return Settings(**{**fields, **changes})  # type: ignore[arg-type]


def test_adversarial_and_diversity_steps_train_the_painter_only_and_resume_the_discriminator(
        tiny: Path, region: dict[str, Path], tmp_path: Path) -> None:  # noqa: F811
    ft = FineTune(_settings(tiny, region, tmp_path / "a"))
    assert "d_rgb" in ft.nets and "d_rgb" in ft.opts
    before = {name: {k: v.clone() for k, v in net.state_dict().items()} for name, net in ft.nets.items()}
    losses = ft.train_step()
    ft.step += 1
    assert set(losses) == {"l1", "spread", "g_gan", "fm", "d"}  # no cross-entropy: --landcover-weight 0
    assert all(torch.isfinite(torch.tensor(v)) for v in losses.values())
    after = {name: net.state_dict() for name, net in ft.nets.items()}
    assert all(torch.equal(before["g_rgb2lc"][k], after["g_rgb2lc"][k]) for k in before["g_rgb2lc"])
    for name in ("g_lc2rgb", "d_rgb"):
        assert any(not torch.equal(before[name][k], after[name][k]) for k in before[name])
    ft.save()
    ft.train_step()
    ft.step += 1
    resumed = FineTune(_settings(tiny, region, tmp_path / "a"))  # the discriminator and its optimizer too
    assert resumed.step == 1
    resumed.train_step()
    for name in ("g_lc2rgb", "d_rgb"):
        got, want = resumed.nets[name].state_dict(), ft.nets[name].state_dict()
        assert all(torch.allclose(got[k], want[k], atol=1e-6) for k in want), name


def test_the_terms_change_the_run_identity_and_bad_weights_are_one_line(
        tiny: Path, region: dict[str, Path], tmp_path: Path) -> None:  # noqa: F811
    plain = _settings(tiny, region, tmp_path / "p", adversarial_weight=0.0, diversity_weight=0.0)
    assert plain.identity() != _settings(tiny, region, tmp_path / "p").identity()
    for changes, message in (({"diversity_weight": -1.0}, "--diversity-weight -1.0 must be >= 0"),
                             ({"adversarial_weight": 0.0}, "--feature-match-weight needs --adversarial-weight"),
                             ({"image_weight": 0.0}, "need --image-weight > 0"),
                             ({"image_weight": 0.0, "adversarial_weight": 0.0, "diversity_weight": 0.0},
                              "Nothing to train")):
        with pytest.raises(TrainingError, match=message):
            FineTune(_settings(tiny, region, tmp_path / "x", **changes))
    assert not (tmp_path / "x").exists()
