"""A run over parts of a raster (:func:`translate_region`, what each super-tile of a distributed job runs) writes the
same pixels as one run over the whole raster, with a window-dependent model (3x3 convolutions + InstanceNorm) and
with position-keyed noise input: the parts use the whole raster's window grid, weights and global positions."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal

from lcgan_qgis.core.errors import OptionError
from lcgan_qgis.core.model.runtime import load_model
from lcgan_qgis.core.rasters.raster import Window
from lcgan_qgis.core.run.engine import TranslateOptions, plan_run, translate, translate_region
from lcgan_qgis.core.run.settings import RunSettings, Windowing
from lcgan_qgis.core.run.tiling import axis_tiling
from tests.fixtures.conv_factory import write_conv
from tests.fixtures.landcover import smooth_landcover
from tests.fixtures.rasters import GEOTRANSFORM, ArrayReader, read_tif


def parts(height: int, width: int, row_cuts: list[int], col_cuts: list[int]) -> list[Window]:
    rows, cols = [0, *row_cuts, height], [0, *col_cuts, width]
    return [Window(c0, r0, c1 - c0, r1 - r0) for r0, r1 in pairwise(rows) for c0, c1 in pairwise(cols)]


@pytest.mark.parametrize(("direction", "noise"), [("landcover_to_rgb", 0), ("landcover_to_rgb", 2),
                                                  ("rgb_to_landcover", 0)])
def test_parts_equal_the_whole_run(tmp_path: Path, direction: str, noise: int) -> None:
    extra = {"noise_channels": noise} if noise else {}
    model = load_model(write_conv(tmp_path / "m.onnx", direction, **extra), "cpu")
    height, width = 203, 261
    if direction == "landcover_to_rgb":
        pixels = smooth_landcover(height, width)
        pixels[:30, :40] = 0  # nodata (the scheme's nodata code 0... and the raster's)
        reader = ArrayReader(pixels, nodata=0)
    else:
        rng = np.random.default_rng(1)
        pixels = rng.integers(6000, 16000, (3, height, width)).astype(np.uint16)
        pixels[:, 50:70, 100:130] = 0
        reader = ArrayReader(pixels, nodata=0)
    options = TranslateOptions(settings=RunSettings(windowing=Windowing(window_px=48, overlap_px=8)))
    translate(model, reader, tmp_path / "whole.tif", options)
    whole = read_tif(tmp_path / "whole.tif")
    plan = plan_run(model.contract, reader, options)
    # cuts anywhere: inside windows, inside overlaps, next to the raster edge
    for i, region in enumerate(parts(height, width, [37, 41, 150], [1, 100, 200])):
        out = tmp_path / f"part{i}.tif"
        result = translate_region(model, reader, plan, region, out)
        got = read_tif(out)
        rows, cols = region.toslices()
        np.testing.assert_array_equal(got, whole[:, rows, cols], err_msg=str(region))
        assert result.tiles >= 1
        x0, y0 = GEOTRANSFORM[0] + 30.0 * region.col_off, GEOTRANSFORM[3] - 30.0 * region.row_off
        assert gdal.Open(str(out)).GetGeoTransform() == (x0, 30.0, 0.0, y0, 0.0, -30.0)


def test_a_part_runs_only_the_windows_touching_it(tmp_path: Path) -> None:
    model = load_model(write_conv(tmp_path / "m.onnx", "landcover_to_rgb"), "cpu")
    reader = ArrayReader(smooth_landcover(200, 400))
    options = TranslateOptions(settings=RunSettings(windowing=Windowing(window_px=48, overlap_px=8)))
    plan = plan_run(model.contract, reader, options)
    whole = plan.tiling()
    region = Window(150, 0, 100, 200)
    reader.reads.clear()
    result = translate_region(model, reader, plan, region, tmp_path / "p.tif")
    touching = [c for c in range(whole.cols.count)
                if whole.cols.starts[c] < region.col_end and whole.cols.stop(c) > region.col_off]
    assert result.tiles == whole.rows.count * len(touching)
    assert {w.col_off for w in reader.reads} == {whole.cols.starts[c] for c in touching}


def test_axis_covering_keeps_the_whole_axis_weights() -> None:
    axis = axis_tiling(1000, 128, 16, 4)
    part = axis.covering(300, 700)
    first = next(i for i, s in enumerate(axis.starts) if s + axis.extent > 300)
    assert part.offset == axis.starts[first]
    assert [part.offset + s for s in part.starts] == [s for s in axis.starts if s < 700 and s + axis.extent > 300]
    for j, w in enumerate(part.weights):
        np.testing.assert_array_equal(w, axis.weights[first + j])
    assert part.offset + part.length >= 700 and part.span >= part.length
    assert axis.covering(0, 1000).starts == axis.starts and axis.covering(0, 1000).offset == 0
    with pytest.raises(ValueError, match="not inside"):
        axis.covering(900, 1001)


def test_a_region_outside_the_raster_is_refused(tmp_path: Path) -> None:
    model = load_model(write_conv(tmp_path / "m.onnx", "landcover_to_rgb"), "cpu")
    reader = ArrayReader(smooth_landcover(64, 64))
    options = TranslateOptions(settings=RunSettings(windowing=Windowing(window_px=32, overlap_px=4)))
    plan = plan_run(model.contract, reader, options)
    with pytest.raises(OptionError, match="not inside"):
        translate_region(model, reader, plan, Window(40, 0, 30, 10), tmp_path / "p.tif")
    assert not list(tmp_path.glob("p*.tif"))
