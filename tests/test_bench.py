"""The pieces of ``make bench`` (``tools/bench/``) on small inputs: the full run takes ~10 minutes of both cores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal

from tests.onnx_factory import write_pointwise
from tools.bench.inputs import mosaic_vrt, synthetic_raster
from tools.bench.measurements import baseline, engine_subprocess, gemm_probe
from tools.bench.measures import psnr, read, timed


@pytest.fixture(scope="module")
def small_raster(zion_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthetic_raster(tmp_path_factory.mktemp("bench"), 320)


def test_synthetic_raster_and_mosaic(small_raster: Path) -> None:
    pixels = read(small_raster)
    assert pixels.shape == (3, 320, 320) and pixels.dtype == np.uint8 and pixels.min() >= 1
    mosaic = gdal.Open(str(mosaic_vrt(small_raster, 320, 2)))
    assert (mosaic.RasterXSize, mosaic.RasterYSize, mosaic.RasterCount) == (640, 640, 3)
    assert np.array_equal(mosaic.ReadAsArray(320, 320, 320, 320), pixels)  # the copies are the tile itself


def test_engine_run_in_a_subprocess_reports_what_it_ran(small_raster: Path, tmp_path: Path) -> None:
    model = write_pointwise(tmp_path / "rgb2lc.onnx", "rgb_to_landcover")
    out = tmp_path / "out.tif"
    run = engine_subprocess(model, small_raster, out, precision="fp32", window_px=128)
    assert run["tiles"] == 9 and run["precision"] == "fp32" and run["batch_shape"][:2] == [1, 3]
    assert run["window_shapes"] == [str(tuple(run["batch_shape"]))]  # one window size, shrunk to fit evenly
    assert 0 < run["ort_seconds_inside"] <= run["seconds"] and run["peak_rss_mb"] > 0
    assert read(out).shape == (1, 320, 320)


def test_baseline_covers_the_raster_with_its_tiles(small_raster: Path, tmp_path: Path) -> None:
    model = write_pointwise(tmp_path / "rgb2lc.onnx", "rgb_to_landcover")
    result = baseline(model, small_raster)
    margin = int(256 * 0.15) // 2
    per_axis = len(range(0, 320 - 2 * margin, 256 - 2 * margin))
    assert result["tiles"] == per_axis ** 2 and result["mpx_per_s"] > 0


def test_measures() -> None:
    value, timing = timed(lambda: sum(range(1000)))
    assert value == 499500 and timing["wall_s"] >= 0 and {"cpu_s", "load_before", "load_after"} <= set(timing)
    a = np.full((3, 4, 4), 100, np.uint8)
    assert psnr(a, a) == float("inf") and psnr(a, a + 1) == pytest.approx(48.13, abs=0.01)
    assert gemm_probe(n=768, repeats=1)["gflops"] > 0


def test_scale_out_row_on_a_small_raster(zion_dir: Path, tmp_path: Path) -> None:
    """The scale-out row end to end (real LocalClusters of 1 and 2 workers) on 600 px with 256 px super-tiles."""
    from tools.bench.inputs import synthetic_landcover
    from tools.bench.scale_out import scale_out

    model = write_pointwise(tmp_path / "lc2rgb.onnx", "landcover_to_rgb")
    row = scale_out(model, synthetic_landcover(tmp_path, 600), tmp_path, tile_px=256,
                    small_raster=synthetic_landcover(tmp_path, 300), pairs=1)
    assert row["single_process"]["windows"] == 4 and row["one_worker"]["tiles"] == row["two_workers"]["tiles"] == 4
    assert row["one_worker"]["max_abs_diff_vs_single"] == row["two_workers"]["max_abs_diff_vs_single"] == 0
    assert row["windows_ratio"] == 2.25  # 2 windows per axis; the one super-tile edge runs one of them twice
    assert row["ratio_two_vs_one_worker"] > 0 and row["overhead_one_worker_vs_single"] > 0
    pair = row["per_tile_overhead"]["pairs"][0]
    assert pair["windows"][0] == pair["windows"][1] and pair["ratio"] > 0  # one super-tile: the engine's windows
    conus = row["conus_estimate"]
    assert conus["windows"] >= conus["windows_single_process"] > 60000 and conus["hours"]["1"] > 0
    assert not list(tmp_path.glob("scale_*"))  # the runs clean up after themselves
