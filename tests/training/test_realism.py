"""Realism metrics (``training.evaluation.realism``, ``.two_sample``) on controlled inputs whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from lcgan_qgis.core.model.scheme import ClassScheme, LandCoverClass
from training.evaluation.frechet import frechet_distance
from training.evaluation.realism import (
    checkerboard_index,
    compare_textures,
    cut_patches,
    gaussian_blur,
    grid_patches,
    local_std,
    percentile_stretch,
)
from training.evaluation.two_sample import TwoSampleConfig, two_sample_test

SCHEME = ClassScheme("two", (LandCoverClass(1, "left", (255, 0, 0, 255)), LandCoverClass(2, "right", (0, 0, 255, 255))))


def texture(rows: int = 128, cols: int = 128, seed: int = 0) -> np.ndarray:
    """A 3-band image with structure at all scales: smoothed noise of several widths plus fine noise."""
    rng = np.random.default_rng(seed)
    image = sum(gaussian_blur(rng.normal(0, 1, (3, rows, cols)).astype(np.float32), s) * s for s in (0.7, 2, 5))
    return (1000.0 + 300.0 * image).astype(np.float32)


def patch_features(image: np.ndarray, patch_px: int = 4) -> np.ndarray:
    """Every non-overlapping 4x4 patch, its mean removed, flattened (48 features): a stand-in for a judge's."""
    corners = grid_patches(np.ones(image.shape[1:], bool), patch_px)
    patches = cut_patches(image, corners, patch_px)
    return (patches - patches.mean(axis=(2, 3), keepdims=True)).reshape(len(corners), -1)


def test_frechet_distance_of_known_gaussians() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4000, 6))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-9)
    assert frechet_distance(a, a + 1.0) == pytest.approx(6.0, rel=1e-9)  # a mean shift of 1 in each of 6 dims
    # 1-D: (mu_a - mu_b)^2 + (sigma_a - sigma_b)^2
    x, y = rng.normal(2.0, 1.0, (20000, 1)), rng.normal(0.0, 3.0, (20000, 1))
    assert frechet_distance(x, y) == pytest.approx(4.0 + 4.0, rel=0.03)
    with pytest.raises(ValueError, match="dimension"):
        frechet_distance(a, a[:, :5])


def test_a_blur_raises_the_distance_above_the_floor_of_two_real_samples() -> None:
    image = texture(192, 192)
    top, bottom = patch_features(image[:, :96]), patch_features(image[:, 96:])
    blurred = patch_features(gaussian_blur(image, 1.0)[:, 96:])
    floor = frechet_distance(top, bottom)  # two disjoint samples of the same texture
    assert frechet_distance(bottom, patch_features(image[:, 96:])) == pytest.approx(0.0, abs=1e-6)
    assert frechet_distance(top, blurred) > 3 * floor


def test_checkerboard_index_is_one_for_identical_images_and_rises_with_a_period_2_pattern() -> None:
    real = texture()
    mask = np.ones(real.shape[1:], bool)
    same = checkerboard_index(real, real.copy(), mask, patch_px=32)
    assert same["index"] == pytest.approx(1.0) and same["patches"] == 16
    rows, cols = np.mgrid[: real.shape[1], : real.shape[2]]
    checker = real + 60.0 * (-1.0) ** (rows + cols) + 60.0 * (-1.0) ** cols  # (0.5, 0.5) and (0.5, 0) cycles/px
    raised = checkerboard_index(checker, real, mask, patch_px=32)
    frequency = raised["per_frequency"]
    assert raised["index"] > 3 and frequency["fy0.5_fx0.5"] > 3 and frequency["fy0_fx0.5"] > 3
    assert frequency["fy0.5_fx0"] == pytest.approx(1.0, abs=0.1)  # no pattern along y alone
    scaled = checkerboard_index(3.0 * real + 7.0, real, mask, patch_px=32)  # units do not count
    assert scaled["index"] == pytest.approx(1.0)
    assert 0.5 < checkerboard_index(gaussian_blur(real, 1.0), real, mask, patch_px=32)["index"] < 1.6  # no pattern
    with pytest.raises(ValueError, match="no 32 px patch"):
        checkerboard_index(real, real, np.zeros_like(mask), patch_px=32)


def test_grid_patches_lie_wholly_inside_the_mask() -> None:
    mask = np.zeros((10, 12), bool)
    mask[2:9, 3:12] = True
    mask[5, 6] = False
    corners = grid_patches(mask, 3)
    assert corners == [(2, 3), (2, 6), (2, 9), (5, 3), (5, 9)]  # (5, 6) holds the hole
    assert len(grid_patches(np.ones((7, 9), bool), 3, stride_px=1)) == 5 * 7


def test_texture_of_noise_vs_its_blur() -> None:
    rng = np.random.default_rng(3)
    real = (1000.0 + 100.0 * rng.normal(size=(3, 64, 64))).astype(np.float32)
    classes = np.zeros((64, 64), np.int64)
    classes[:, 32:] = 1
    valid = np.ones((64, 64), bool)
    same = compare_textures(real, real, classes, valid, SCHEME, ["r", "g", "b"])
    assert same["local_std_mean_abs_error"] == [0.0, 0.0, 0.0] and same["local_std_ratio"] == [1.0, 1.0, 1.0]
    assert same["gradient_ratio"] == [1.0, 1.0, 1.0]
    flat = compare_textures(real, gaussian_blur(real, 1.5), classes, valid, SCHEME, ["r", "g", "b"])
    for key in ("local_std_ratio", "gradient_ratio"):
        assert all(r < 0.5 for r in flat[key])  # the blur smooths away most of the texture
    assert all(e > 30 for e in flat["local_std_mean_abs_error"])
    left = flat["per_class"]["1"]
    assert left["pixels"] > 0 and left["real_local_std"][0] == pytest.approx(100.0, rel=0.15)
    assert left["generated_local_std"][0] < left["real_local_std"][0]


def test_local_std_ignores_windows_that_touch_nodata() -> None:
    image = np.ones((1, 20, 20), np.float32)
    valid = np.ones((20, 20), bool)
    valid[10, 10] = False
    image[0, 10, 10] = 1e6
    values, ok = local_std(image, valid)
    assert not ok[8:13, 8:13].any() and ok[5, 5] and not ok[0, 0]  # the hole's windows and the border are out
    assert np.allclose(values[0][ok], 0.0)


def test_percentile_stretch_removes_units() -> None:
    image = texture()
    valid = np.ones(image.shape[1:], bool)
    a, b = percentile_stretch(image, valid), percentile_stretch(10.0 * image + 500.0, valid)
    assert np.allclose(a, b, atol=1e-5) and a.min() == -1.0 and a.max() == 1.0


def test_two_sample_test_of_identical_imagery_is_chance_and_of_a_checkerboard_near_one() -> None:
    real = percentile_stretch(texture(96, 96), np.ones((96, 96), bool))
    train = np.zeros((96, 96), bool)
    train[:64] = True
    config = TwoSampleConfig(patch_px=16, batch_size=32, max_steps=400, eval_every_steps=25, patience_evals=4,
                             val_patches=16, seeds=(0,))
    same = two_sample_test(real, real.copy(), train, ~train, config)
    assert same["accuracy"] == pytest.approx(0.5)  # identical patches get identical scores: one of each pair is wrong
    assert same["runs"][0]["steps"] >= 200  # its loss never improves, yet no early stop in the first half
    rows, cols = np.mgrid[:96, :96]
    fake = np.clip(real + 0.3 * (-1.0) ** (rows + cols), -1, 1).astype(np.float32)
    told = two_sample_test(real, fake, train, ~train, config)
    run = told["runs"][0]
    assert told["accuracy"] > 0.9 and run["steps"] >= 25 and run["test_patches_per_class"] == 12
    assert two_sample_test(real, fake, train, ~train, config)["accuracy"] == told["accuracy"]  # seeded
