"""The pieces of ``make bench`` (``tools/bench/``) on small inputs: the full run takes ~10 minutes of both cores."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal

from lcgan_qgis.core.model.contract import Radiometry
from tests.fixtures.onnx_factory import write_pointwise
from tests.optional import OPENVINO_MISSING, needs_openvino
from tools.bench.inputs import mosaic_vrt, synthetic_raster
from tools.bench.measurements import baseline, engine_subprocess, gemm_probe
from tools.bench.measures import REPO, psnr, read, timed
from tools.bench.phase_profile import output_hash


@pytest.fixture(scope="module")
def small_raster(zion_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthetic_raster(tmp_path_factory.mktemp("bench"), 320)


def test_synthetic_raster_and_mosaic(small_raster: Path) -> None:
    pixels = read(small_raster)
    assert pixels.shape == (3, 320, 320) and pixels.dtype == np.uint8 and pixels.min() >= 1
    mosaic = gdal.Open(str(mosaic_vrt(small_raster, 320, 2)))
    assert (mosaic.RasterXSize, mosaic.RasterYSize, mosaic.RasterCount) == (640, 640, 3)
    assert "UTM zone 12N" in mosaic.GetProjection()  # the job's resolution check needs a CRS
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


def test_path_rows_measure_every_path_against_the_reference(small_raster: Path, tmp_path: Path) -> None:
    """One row per backend x precision this machine offers: speed, pure inference, overhead and fidelity."""
    from lcgan_qgis.core.model.precision import CPU_ORDER, REFERENCE, int8_sibling
    from lcgan_qgis.tooling.quantize import quantize_model
    from tests.fixtures.conv_factory import write_conv
    from tools.bench.measurements import path_rows

    eight_bit = Radiometry(mode="percentile", low=(10.0,) * 3, high=(240.0,) * 3)
    model = write_conv(tmp_path / "rgb2lc.onnx", "rgb_to_landcover", radiometry=eight_bit)
    quantize_model(model, small_raster, int8_sibling(model), windows=2, window_px=128, float_first=False)
    result = path_rows(model, small_raster, tmp_path, tmp_path / "cache", tile_effect=True)
    rows = result["rows"]
    assert set(rows) == {p.key for p in CPU_ORDER} | {"onnxruntime/fp32@tile"}
    assert rows[REFERENCE.key]["class_agreement_vs_fp32"] == 1.0 and rows[REFERENCE.key]["speedup_vs_fp32"] == 1.0
    measured = [k for k, row in rows.items() if "skipped" not in row]
    assert {"onnxruntime/fp32", "onnxruntime/int8", "onnxruntime/fp32@tile"} <= set(measured)
    if OPENVINO_MISSING is None:
        assert {"openvino/fp32", "openvino/int8"} <= set(measured)
        assert rows["openvino/fp32"]["class_agreement_vs_fp32"] >= 0.999
    for key in measured:
        row = rows[key]
        assert row["mpx_per_s"] > 0 and 0.0 <= row["class_agreement_vs_fp32"] <= 1.0
        if key != "onnxruntime/fp32@tile":
            assert row["pure_s"] > 0
            assert row["overhead_ratio"] == pytest.approx(row["seconds"] / row["pure_s"], rel=0.05)
    assert not list(tmp_path.glob("rgb2lc_*.tif"))  # the rows' outputs are removed once compared


@needs_openvino
def test_compile_times_use_a_fresh_then_a_filled_cache(tmp_path: Path) -> None:
    from tools.bench.measurements import compile_times

    model = write_pointwise(tmp_path / "rgb2lc.onnx", "rgb_to_landcover")
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "stale.blob").write_bytes(b"x")  # emptied first: the first run really compiles
    result = compile_times(model, "fp32", "openvino", (1, 3, 64, 64), tmp_path / "cache")
    assert result["first_run"] > 0 and result["second_run"] >= 0 and result["cache_mb"] > 0
    assert not (tmp_path / "cache" / "stale.blob").exists()


def test_interleaved_check_alternates_baseline_and_engine(small_raster: Path, tmp_path: Path) -> None:
    from tools.bench.measurements import interleaved_check

    model = write_pointwise(tmp_path / "rgb2lc.onnx", "rgb_to_landcover")
    result = interleaved_check(model, small_raster, 256, tmp_path, tmp_path / "cache", "fp32", "onnxruntime")
    assert result["crop_px"] == 256 and len(result["runs"]) == 2 and result["path"] == "onnxruntime fp32"
    for run in result["runs"]:
        assert run["baseline_s"] > 0 and run["ours_s"] > 0 and run["baseline_no_spinning_s"] > 0
    assert result["speedup_vs_baseline"] > 0 and result["speedup_vs_baseline_no_spinning"] > 0
    assert read(tmp_path / "crop_256.tif").shape == (3, 256, 256)


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
    assert row["per_tile_overhead"]["cold_worker_ratio"] > 0
    conus = row["conus_estimate"]
    assert conus["windows"] >= conus["windows_single_process"] > 60000 and conus["hours"]["1"] > 0
    threads = row["thread_dependence"]
    assert threads["threads"][0] == 1 and threads["max_abs_diff"] == 0  # a per-pixel fp32 model: no sum to split
    assert not list(tmp_path.glob("scale_*")) and not list(tmp_path.glob("threads_*"))  # the runs clean up


def test_phase_profile_times_the_steps_and_leaves_the_output_as_it_is(small_raster: Path, tmp_path: Path) -> None:
    """tools/bench/phase_profile.py (in its own process: it wraps the engine's functions) times every step of one
    translation, and its output is the plain engine run's, pixel for pixel, overviews included."""
    model = write_pointwise(tmp_path / "rgb2lc.onnx", "rgb_to_landcover")
    done = subprocess.run([sys.executable, "-m", "tools.bench.phase_profile", str(model), str(small_raster),
                           str(tmp_path / "profiled.tif"), "--threads", "1"], cwd=REPO, capture_output=True,
                          text=True, check=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    report = json.loads(done.stdout.strip().splitlines()[-1])
    phases = report["phases"]
    for phase in ("plan: radiometry sample / land-cover pre-scan", "read (GDAL)", "preprocess", "inference",
                  "blending", "post-processing", "write (compress + flush)", "overviews", "statistics (class counts)"):
        assert phases[phase]["calls"] >= 1 and phases[phase]["wall_s"] >= 0, phase
    assert phases["inference"]["calls"] == phases["blending"]["calls"] == 1  # (one 320 px window)
    assert 0 < phases["inference"]["cpu_s"] <= report["job_process_cpu_s"]
    engine_subprocess(model, small_raster, tmp_path / "plain.tif")
    assert report["output_sha256"] == output_hash(str(tmp_path / "plain.tif"))
