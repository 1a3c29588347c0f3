"""Blending with a real convolutional model: close to the untiled result, far closer than naive tiles, no seams."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lcgan_qgis.core.model.contract import to_uint8
from lcgan_qgis.core.model.runtime import Model, load_model
from lcgan_qgis.core.rasters.output import argmax_channels
from lcgan_qgis.core.run.engine import TranslateOptions, translate
from lcgan_qgis.core.run.settings import RunSettings, Windowing
from lcgan_qgis.core.run.tiling import make_tiling
from tests.fixtures.conv_factory import write_conv
from tests.fixtures.landcover import CODES, smooth_landcover
from tests.fixtures.rasters import ArrayReader, read_tif


def naive(model: Model, codes: np.ndarray, tile: int) -> np.ndarray:
    """Independent tiles on a fixed grid, no overlap: what the engine must beat."""
    onehot = (np.searchsorted(CODES, codes)[None] == np.arange(14)[:, None, None]).astype(np.float32)
    out = np.zeros((3, *codes.shape), np.float32)
    for r in range(0, codes.shape[0], tile):
        for c in range(0, codes.shape[1], tile):
            out[:, r:r + tile, c:c + tile] = model.run(onehot[None, :, r:r + tile, c:c + tile])[0]
    return np.maximum(to_uint8(out), 1)


def seam_ratio(img: np.ndarray, lines: list[int]) -> float:
    """Mean |difference| between horizontal neighbours across the given column lines / elsewhere (>= 4 px away)."""
    diff = np.abs(np.diff(img.astype(np.float64), axis=2)).mean(axis=(0, 1))  # diff[k]: columns k and k+1
    across = [x - 1 for x in lines if 0 < x < img.shape[2]]
    away = np.ones(diff.size, bool)
    for x in lines:
        away[max(0, x - 5):x + 4] = False
    return float(diff[across].mean() / diff[away].mean())


@pytest.fixture(scope="module")
def conv(tmp_path_factory: pytest.TempPathFactory) -> Model:
    return load_model(write_conv(tmp_path_factory.mktemp("m") / "conv.onnx", "landcover_to_rgb"), "cpu")


def test_conv_without_instance_norm_matches_untiled_away_from_edges(tmp_path: Path) -> None:
    model = load_model(write_conv(tmp_path / "plain.onnx", "landcover_to_rgb", instance_norm=False), "cpu")
    codes = smooth_landcover(200, 260)
    options = TranslateOptions(settings=RunSettings(windowing=Windowing(window_px=64, overlap_px=16)))
    translate(model, ArrayReader(codes), tmp_path / "tiled.tif", options)
    options = TranslateOptions(settings=RunSettings(windowing=Windowing(window_px=512, overlap_px=0)))
    translate(model, ArrayReader(codes), tmp_path / "whole.tif", options)
    tiled, whole = read_tif(tmp_path / "tiled.tif").astype(int), read_tif(tmp_path / "whole.tif").astype(int)
    # the receptive field is 5x5: with 16 px of overlap and ramps, window borders carry almost no weight
    error = np.abs(tiled - whole)
    assert error.max() <= 6 and error.mean() < 0.05 and (error <= 1).mean() > 0.995


def test_blending_beats_naive_tiles_with_instance_norm(conv: Model, tmp_path: Path) -> None:
    codes = smooth_landcover(256, 384, seed=1)
    options = TranslateOptions(settings=RunSettings(windowing=Windowing(window_px=64, overlap_px=16)))
    translate(conv, ArrayReader(codes), tmp_path / "blend.tif", options)
    blended = read_tif(tmp_path / "blend.tif").astype(float)
    cut = naive(conv, codes, 64).astype(float)
    # InstanceNorm gives each window its own statistics, so neither matches the whole raster exactly; what
    # blending must remove are the steps at window borders
    tiling = make_tiling(256, 384, 64, 64, 16, 4)
    lines = sorted({s for s in tiling.cols.starts[1:]} | {tiling.cols.stop(i) for i in range(tiling.cols.count - 1)})
    assert seam_ratio(blended, lines) < 1.1 < seam_ratio(cut, list(range(64, 384, 64)))


def test_bench_seam_ratio_sees_steps_and_only_steps() -> None:
    from tools.bench.measures import grid_lines
    from tools.bench.measures import seam_ratio as seam_ratio_2d

    rng = np.random.default_rng(0)
    texture = rng.normal(100, 5, (3, 200, 300))
    assert seam_ratio_2d(texture, [100], [100, 200]) == pytest.approx(1.0, abs=0.1)
    stepped = texture.copy()
    stepped[:, :, 100:] += 20  # a brightness step at column 100, like naive InstanceNorm tiles
    assert seam_ratio_2d(stepped, [100], [100, 200]) > 1.5  # one of three lines steps
    assert grid_lines((0, 90, 180), 120, 300) == [90, 105, 120, 180, 195, 210]


def test_class_argmax_keeps_the_first_of_equal_maxima() -> None:
    """The post-processing's argmax over the class channels (output.argmax_channels) gives numpy's argmax and max,
    ties included, on a non-contiguous part of a buffer as the blender hands it over."""
    values = np.random.default_rng(5).random((14, 40, 50), dtype=np.float32).round(1)[:, 3:, 5:]  # (many ties)
    indices, best = argmax_channels(values)
    assert indices.dtype == np.uint8 and np.array_equal(indices, values.argmax(axis=0))
    assert np.array_equal(best, values.max(axis=0))
    many = np.random.default_rng(6).random((300, 4, 5), dtype=np.float32)
    assert np.array_equal(argmax_channels(many)[0], many.argmax(axis=0))
