"""The generator recipe beyond the reference: resize-convolution, running-statistics norms, noise input, low-pass
pixel losses and augmentation, each with real tensors and real optimizer steps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from tests.fixtures.training import tiny_config
from training.augment import radiometric_jitter, resize_image, resize_labels, scaled_size, with_noise
from training.export import export_checkpoint
from training.losses import masked_l1
from training.models import ResnetGenerator, for_inference, norm_factory
from training.nets.layers import CheckerboardNull
from training.trainer import Trainer

RECIPE = ["model.upsample=nearest", "model.norm=instance_running", "model.noise_channels=3",
          "loss.pixel_lowpass_px=4", "loss.cycle_image_noise=0.1", "data.jitter_gain=0.2", "data.jitter_offset=0.05",
          "data.jitter_gamma=0.2", "data.scale_jitter=0.25"]


def period2_share(image: torch.Tensor) -> float:
    """Share of the (mean-removed) spectral power at the period-2 frequencies (the checkerboard)."""
    x = image - image.mean(dim=(-2, -1), keepdim=True)
    power = torch.fft.fft2(x.double()).abs() ** 2
    h, w = power.shape[-2:]
    return float((power[..., h // 2, :].sum() + power[..., :, w // 2].sum()) / power.sum().clamp_min(1e-30))


@pytest.mark.parametrize("seed", [0, 1])
def test_resize_convolution_keeps_shapes_and_paints_no_checkerboard(seed: int) -> None:
    """One class everywhere: the reference's transposed convolutions paint a period-2 checkerboard (about half of
    the output's varying power here), resize-convolution does not (zero-padded downsampling still lets the border
    reach inward, so the output is not flat, only smooth)."""
    constant = torch.zeros(1, 14, 128, 128)
    constant[:, 3] = 1.0
    shares = {}
    for upsample in ("nearest", "bilinear", "transpose"):
        torch.manual_seed(seed)
        with torch.no_grad():
            out = ResnetGenerator(14, 3, ngf=8, n_blocks=1, upsample=upsample)(constant)
        assert out.shape == (1, 3, 128, 128)
        shares[upsample] = period2_share(out[:, :, 32:96, 32:96])
    assert shares["transpose"] > 0.3
    assert shares["nearest"] < 0.01 and shares["bilinear"] < 0.1


@pytest.mark.parametrize("norm", ["instance_running", "batch"])
def test_running_norm_generators_export_as_pure_convolutions(norm: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    g = ResnetGenerator(3, 5, ngf=8, n_blocks=1, final="logits", upsample="nearest", norm=norm)
    for _ in range(5):  # training-mode passes fill the running statistics
        g(torch.randn(2, 3, 32, 32) * 0.5 + 0.2)
    x = torch.randn(1, 3, 48, 40)
    with torch.no_grad():
        expected = g.eval()(x)
        assert torch.allclose(for_inference(g)(x), expected, atol=1e-5)
        # window independence: the centre of a crop equals the centre of the whole (no per-window statistics)
        crop = g(x[:, :, 8:40, 8:32])
    assert torch.allclose(crop[:, :, 12:20, 8:16], expected[:, :, 20:28, 16:24], atol=1e-4)
    with pytest.raises(ValueError, match="instance_running"):
        norm_factory("group")


def test_instance_norm_is_window_dependent_and_running_norm_is_not() -> None:
    """The control for the test above: reference InstanceNorm changes a pixel when the window around it changes."""
    torch.manual_seed(0)
    g = ResnetGenerator(3, 5, ngf=8, n_blocks=1, final="logits", norm="instance").eval()
    x = torch.randn(1, 3, 48, 40)
    with torch.no_grad():
        whole, crop = g(x), g(x[:, :, 8:40, 8:32])
    assert (crop[:, :, 12:20, 8:16] - whole[:, :, 20:28, 16:24]).abs().max() > 1e-2


def test_lowpass_l1_ignores_texture_but_not_colour() -> None:
    target = torch.zeros(1, 3, 16, 16)
    checker = (torch.arange(16)[:, None] + torch.arange(16)[None]) % 2 * 2.0 - 1.0
    textured = target + 0.5 * checker  # same block means, different pixels
    assert masked_l1(textured, target) == pytest.approx(0.5)
    assert masked_l1(textured, target, lowpass_px=4) == pytest.approx(0.0, abs=1e-6)
    assert masked_l1(target + 0.3, target, lowpass_px=4) == pytest.approx(0.3)
    valid = torch.ones(1, 16, 16, dtype=torch.bool)
    valid[:, :4, :4] = False  # an invalid pixel takes its whole block out
    shifted = target.clone()
    shifted[:, :, :4, :4] = 5.0
    assert masked_l1(shifted, target, valid, lowpass_px=4) == pytest.approx(0.0, abs=1e-6)


def test_augmentations_keep_masks_aligned_and_values_in_range() -> None:
    torch.manual_seed(0)
    image = -torch.ones(2, 3, 40, 40)
    image[:, :, 8:24, 12:32] = 0.8
    mask = image[:, 0] > 0
    labels = mask.long() * 7
    size = scaled_size(40, 40, 1.3)
    assert size == (52, 52)
    big_image, big_mask, big_labels = resize_image(image, size), resize_labels(mask, size), resize_labels(labels, size)
    assert big_mask.dtype == torch.bool and big_labels.dtype == torch.long
    assert torch.equal(big_labels == 7, big_mask)
    agreement = ((big_image[:, 0] > -0.1) == big_mask).float().mean()
    assert agreement > 0.97  # the mask's pixels are the square's pixels (up to the blended edge)
    jittered = radiometric_jitter(image, 0.2, 0.05, 0.2)
    assert jittered.shape == image.shape and jittered.abs().max() <= 1.0
    assert not torch.equal(jittered, image)
    assert torch.equal(radiometric_jitter(image, 0.0, 0.0, 0.0), image)
    per_band = jittered[:, :, 10, 15]
    assert not torch.allclose(per_band[:, 0], per_band[:, 1])  # per band
    noisy = with_noise(image, 4)
    assert noisy.shape == (2, 7, 40, 40) and torch.equal(noisy[:, :3], image)


def test_the_full_recipe_trains_exports_and_runs_in_onnxruntime(data_dir: Path, tmp_path: Path) -> None:
    config = tiny_config(*RECIPE, "data.paired_landcover=['lc.tif']", "loss.lambda_paired_lc=5",
                         "loss.lambda_paired_rgb=5", "runtime.max_steps=4")
    trainer = Trainer(config, data_dir, tmp_path / "run")
    before = {k: v.clone() for k, v in trainer.nets["g_rgb2lc"].state_dict().items()}
    trainer.fit()
    after = trainer.nets["g_rgb2lc"].state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before if k.endswith("weight"))
    running = [k for k in after if k.endswith("running_var")]
    assert running and not all(torch.equal(after[k], torch.ones_like(after[k])) for k in running)
    diffs = export_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt", tmp_path / "models")
    assert max(diffs.values()) < 1e-4
    session = ort.InferenceSession(str(tmp_path / "models" / "landcover_to_rgb.onnx"),
                                   providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape[1] == 14 + 3  # one-hot classes + noise channels
    x = np.zeros((1, 17, 32, 32), np.float32)
    x[:, 5] = 1
    x[:, 14:] = np.random.default_rng(0).normal(size=(1, 3, 32, 32))
    y = session.run(None, {"input": x})[0]
    assert y.shape == (1, 3, 32, 32) and np.isfinite(y).all()


def test_checkerboard_null_removes_the_checkerboard_and_keeps_longer_periods() -> None:
    """The fixed notch's response: 0 at (-1)^(row+col), 1 at period-2 rows and at the mean, values kept in range."""
    rows, cols = torch.meshgrid(torch.arange(32), torch.arange(32), indexing="ij")
    checker = ((-1.0) ** (rows + cols)).expand(1, 3, 32, 32)
    stripes = ((-1.0) ** rows).float().expand(1, 3, 32, 32)
    constant = torch.full((1, 3, 32, 32), 0.7)
    f = CheckerboardNull(3)
    assert f(checker)[..., 1:-1, 1:-1].abs().max() < 1e-6
    assert torch.allclose(f(stripes * 0.5), stripes * 0.5)
    assert torch.allclose(f(constant), constant)
    noisy = torch.rand(1, 3, 40, 36) * 2 - 1
    assert f(noisy).abs().max() <= 1.0 and period2_share(f(noisy)) < period2_share(noisy)


def test_export_adds_the_output_filter_to_a_checkpoint_trained_without(data_dir: Path, tmp_path: Path) -> None:
    """A real checkpoint without the filter exports with it (no weights to load) and the graph applies it."""
    config = tiny_config("model.upsample=nearest", "runtime.max_steps=2")
    Trainer(config, data_dir, tmp_path / "run").fit()
    ckpt = tmp_path / "run" / "checkpoints" / "last.pt"
    plain = export_checkpoint(ckpt, tmp_path / "plain")
    filtered = export_checkpoint(ckpt, tmp_path / "filtered", output_filter="checkerboard_null")
    assert max(plain.values()) < 1e-4 and max(filtered.values()) < 1e-4
    x = np.zeros((1, 14, 32, 32), np.float32)
    x[:, 2, :, :16] = 1
    x[:, 7, :, 16:] = 1
    outs = {name: ort.InferenceSession(str(tmp_path / name / "landcover_to_rgb.onnx"),
                                       providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
            for name in ("plain", "filtered")}
    expected = CheckerboardNull(3)(torch.from_numpy(outs["plain"])).numpy()
    assert np.abs(outs["filtered"] - expected).max() < 1e-5
    assert np.abs(outs["filtered"] - outs["plain"]).max() > 1e-4  # the filter is in the graph
    with pytest.raises(ValueError, match="output_filter"):
        ResnetGenerator(3, 14, ngf=8, n_blocks=1, final="logits", output_filter="checkerboard_null")
