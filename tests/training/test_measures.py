"""Issue 22's realism measures (``training.evaluation``: periodic, relief, frechet, seeds, crops) on controlled inputs.

Synthetic inputs whose answer is known; the same checks on the real Zion imagery where ``../shared/data/zion`` is
present (skipped, with the reason, where it is not).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from training.evaluation.crops import best_crop, write_class_crops
from training.evaluation.frechet import frechet_references
from training.evaluation.periodic import peak_index
from training.evaluation.realism import gaussian_blur
from training.evaluation.relief import Hillshades, relief_correlation
from training.evaluation.seeds import seed_diversity

HELDOUT = Path(__file__).resolve().parents[2] / "training" / "configs" / "zion_areas" / "heldout_south.geojson"


def texture(rows: int = 256, cols: int = 256, seed: int = 0) -> np.ndarray:
    """A 3-band image with structure at all scales (smoothed noise of several widths), no period."""
    rng = np.random.default_rng(seed)
    image = sum(gaussian_blur(rng.normal(0, 1, (3, rows, cols)).astype(np.float32), s) * s for s in (0.7, 2, 5))
    return (1000.0 + 300.0 * image).astype(np.float64)


def stripes(image: np.ndarray, amplitude_share: float = 0.03, period_px: float = 4.3) -> np.ndarray:
    """``image`` plus horizontal stripes of ``amplitude_share`` of its 2-98 % range (the "corduroy")."""
    span = np.percentile(image, 98) - np.percentile(image, 2)
    rows = np.arange(image.shape[1])[None, :, None]
    return image + amplitude_share * span * np.sin(2 * np.pi * rows / period_px)


def white_noise(image: np.ndarray, share: float = 0.1, seed: int = 1) -> np.ndarray:
    return image + np.random.default_rng(seed).normal(0, share * image.std(), image.shape)


# -- periodic-texture peak index ---------------------------------------------------------------------------------------
def check_peak_index(real: np.ndarray, mask: np.ndarray) -> None:
    assert peak_index(real, real, mask)["index"] == pytest.approx(1.0)
    assert peak_index(gaussian_blur(real, 1.0), real, mask)["index"] == pytest.approx(1.0, abs=0.2)
    assert peak_index(white_noise(real), real, mask)["index"] == pytest.approx(1.0, abs=0.1)
    striped = peak_index(stripes(real), real, mask)
    assert striped["index"] > 1.8
    fy, fx, _ratio = striped["generated_top_cycles_per_px"][0]
    assert abs(abs(fy) - 1 / 4.3) < 0.02 and fx == 0.0  # the strongest peak is the stripes' frequency


def test_peak_index_on_a_synthetic_texture() -> None:
    check_peak_index(texture(), np.ones((256, 256), bool))


def test_peak_index_on_real_imagery(zion_dir: Path) -> None:
    from training.evaluation.rasters import area_mask, read_raster

    real = read_raster(zion_dir / "landsat8_rgb.tif")
    check_peak_index(real.pixels.astype(np.float64), area_mask(HELDOUT, real) & real.valid)


# -- relief correlation ------------------------------------------------------------------------------------------------
def hills(rows: int = 96, cols: int = 96) -> np.ndarray:
    """Elevations (m) of a few Gaussian hills and a ridge at 30 m pixels."""
    y, x = np.mgrid[0:rows, 0:cols].astype(np.float64)
    z = 1500 + 300 * np.exp(-((y - 30) ** 2 + (x - 40) ** 2) / 200)
    z += 200 * np.exp(-((y - 70) ** 2 + (x - 70) ** 2) / 80)
    return z + 150 * np.exp(-((x - y / 2 - 20) ** 2) / 30)


def test_relief_of_the_hillshade_itself_and_of_a_flat_painting() -> None:
    z, mask = hills(), np.ones((96, 96), bool)
    shade = Hillshades(z, mask, (30.0, 30.0)).values(135.0, 45.0).reshape(96, 96)
    as_image = np.repeat(shade[None], 3, axis=0)
    flat = np.full((3, 96, 96), 900.0)
    flat[:, :, 48:] = 1400.0  # two flat class colours, unrelated to the hills
    painted = white_noise(flat, 0.02)
    result = relief_correlation(painted, as_image, z, mask, (30.0, 30.0))
    assert result["real"]["correlation"] > 0.98  # the hillshade itself: ~1, and its sun is found
    assert abs(result["real"]["sun_azimuth_deg"] - 135.0) <= 10 and abs(result["real"]["sun_elevation_deg"] - 45) <= 5
    assert abs(relief_correlation(white_noise(np.full((3, 96, 96), 900.0), 0.05, seed=3), as_image, z, mask,
                                  (30.0, 30.0))["generated"]["correlation"]) < 0.15
    ratio = result["generated"]["correlation"] / result["real"]["correlation"]
    assert result["ratio"] == pytest.approx(ratio, abs=2e-3)


def test_relief_of_a_flat_colour_is_zero() -> None:
    z, mask = hills(), np.ones((96, 96), bool)
    shade = np.repeat(Hillshades(z, mask, (30.0, 30.0)).values(200.0, 30.0).reshape(1, 96, 96), 3, axis=0)
    result = relief_correlation(np.full((3, 96, 96), 7.0), shade, z, mask, (30.0, 30.0))
    assert result["generated"]["correlation"] == 0.0 and result["ratio"] == 0.0


# -- Frechet distance with references ----------------------------------------------------------------------------------
def test_frechet_references_come_out_in_a_persons_order() -> None:
    """Real imagery of another area (other content: a colour shift over part of it) is closer to the reference than
    its 1 px blur; a painting with the right colours and no texture, and faint stripes, are farther than that."""
    real = texture(256, 512, seed=4)
    real[0, 128:, 384:] += 150.0  # the other area holds some other land cover
    reference, test = np.zeros((256, 512), bool), np.zeros((256, 512), bool)
    reference[:, :256], test[:, 256:] = True, True
    painted = gaussian_blur(real, 4.0)  # the right colours in the right places, no texture
    result = frechet_references(real, {"painted": painted, "striped": stripes(real, 0.05)}, reference, test)
    d = result["distances"]
    assert result["references_in_order"] and d["real_floor"] < d["real_other_area"] < d["blurred"]
    assert d["painted"] > d["blurred"] > d["real_other_area"]
    assert d["striped"] > d["real_other_area"]
    assert result["over_real_other_area"]["real_other_area"] == 1.0
    assert result["samples_per_set"] == 32  # half the reference area's 64 patches: the floor needs two samples


def test_frechet_needs_enough_patches() -> None:
    image = texture(64, 64)
    with pytest.raises(ValueError, match="too few whole 32 px patches"):
        frechet_references(image, {}, np.ones((64, 64), bool), np.ones((64, 64), bool))


# -- seeds -------------------------------------------------------------------------------------------------------------
def test_seed_diversity_of_known_renders() -> None:
    rgb = np.random.default_rng(0).integers(0, 255, (3, 8, 8)).astype(np.uint8)
    lc = np.zeros((8, 8), np.uint8)
    ok = np.ones((8, 8), bool)
    same = seed_diversity({1: (rgb, lc, ok), 2: (rgb.copy(), lc.copy(), ok)}, ok)
    assert same["mean_abs_difference"] == [0.0, 0.0, 0.0] and same["layout_agreement"] == 1.0
    other_lc = lc.copy()
    other_lc[:2] = 1  # 16 of 64 pixels read as another class
    brighter = (rgb.astype(np.int16) + 10).clip(0, 255).astype(np.uint8)
    rgb10 = np.minimum(rgb, 245)  # so that +10 never clips
    diff = seed_diversity({1: (rgb10, lc, ok), 2: (np.minimum(brighter, rgb10 + 10), other_lc, ok)}, ok)
    assert diff["mean_abs_difference"] == [10.0, 10.0, 10.0] and diff["layout_agreement"] == 0.75


# -- crops -------------------------------------------------------------------------------------------------------------
def test_class_crops_at_full_resolution_and_3x(tmp_path: Path) -> None:
    import matplotlib.image

    codes = np.full((120, 200), 42, np.uint8)
    codes[10:60, 120:190] = 52  # shrub in the first area
    codes[80:115, 5:45] = 11  # water only in the second area
    first, second = np.zeros((120, 200), bool), np.zeros((120, 200), bool)
    first[:, 100:], second[:, :100] = True, True
    assert best_crop(codes == 52, first, 32)[2] == 1.0
    panels = [np.full((120, 200, 3), v, np.uint8) for v in (10, 100, 200)]
    written = {c["class"]: c for c in write_class_crops(codes, [("heldout", first), ("training_area", second)],
                                                          panels, tmp_path, crop_px=32, zoom_crop_px=16)}
    assert written["shrub"]["area"] == "heldout" and written["water"]["area"] == "training_area"
    assert not written["barren"]["present"]
    one = matplotlib.image.imread(tmp_path / "shrub_1x.png")
    three = matplotlib.image.imread(tmp_path / "shrub_3x.png")
    assert one.shape[:2] == (32, 3 * 32 + 2 * 4) and three.shape[:2] == (48, 3 * 48 + 2 * 4)
    assert one[0, 0, 0] == pytest.approx(10 / 255, abs=1e-3) and one[0, 36 + 5, 0] == pytest.approx(100 / 255, abs=1e-3)
