"""Work that scales with the data, and inference that can be stopped (issue 24).

Windows with no valid pixel are not run through the model (``core/run/streaming.py::has_valid_pixel``), so a huge
raster holding one small block of data translates in seconds; a model that never returns is stopped by a cancel
(SIGINT, SIGTERM, SIGHUP, QGIS's Cancel) within a poll interval and by the per-batch time limit derived from the
measured speed (``core/run/watchdog.py``), leaving no file.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from osgeo import gdal

from lcgan_qgis.core.model.runtime import load_model
from lcgan_qgis.core.rasters.gdal_io import GdalReader
from lcgan_qgis.core.run import watchdog
from lcgan_qgis.core.run.engine import translate
from lcgan_qgis.core.run.watchdog import InferenceTimeoutError, Watchdog
from tests.fixtures.onnx_factory import default_contract, write_pointwise
from tests.fixtures.rasters import crs_wkt, write_tif

from . import odd_models

REPO = Path(__file__).resolve().parents[2]
CODES = np.array([11, 21, 41, 42, 52, 71, 81, 82, 90, 31], np.uint8)


class _Counting:
    """An onnxruntime session that counts the windows it is given."""

    def __init__(self, session: Any) -> None:
        self.session, self.windows = session, 0

    def run(self, names: list[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        self.windows += len(next(iter(feeds.values())))
        return self.session.run(names, feeds)


def _sparse_landcover(path: Path, size: int, blocks: list[tuple[int, int]], block: int = 256) -> Path:
    """A sparse GeoTIFF (``SPARSE_OK``: unwritten blocks read as nodata 255) with data only in ``blocks``."""
    ds = gdal.GetDriverByName("GTiff").Create(str(path), size, size, 1, gdal.GDT_Byte,
                                              ["TILED=YES", "SPARSE_OK=TRUE", "COMPRESS=DEFLATE"])
    ds.SetGeoTransform((500000.0, 30.0, 0.0, 4200000.0, 0.0, -30.0))
    ds.SetProjection(crs_wkt())
    band = ds.GetRasterBand(1)
    band.SetNoDataValue(255)
    for i, (col, row) in enumerate(blocks):
        band.WriteArray(CODES[np.random.default_rng(i).integers(0, 10, (block, block))], col, row)
    ds = None
    return path


def _counting_model(tmp: Path) -> tuple[Any, _Counting]:
    model = load_model(write_pointwise(tmp / "m.onnx", "landcover_to_rgb"), threads=1)
    counter = _Counting(model.session)
    return dataclasses.replace(model, session=counter), counter


@pytest.mark.slow
def test_a_30000_px_raster_with_one_block_of_data_runs_only_the_windows_with_data(tmp_path: Path) -> None:
    """Before: 3,600 windows through the model (hours with a real generator); now the 1-4 windows over the block, and
    the whole run (pre-scan, 3,600 reads, writing, overviews) takes well under a minute of CPU."""
    raster = _sparse_landcover(tmp_path / "lc.tif", 30000, [(15104, 15104)])
    model, counter = _counting_model(tmp_path)
    cpu = time.process_time()
    result = translate(model, GdalReader(raster), tmp_path / "out.tif")
    cpu = time.process_time() - cpu
    assert not result.canceled and 1 <= counter.windows <= 4, counter.windows
    assert cpu < 60, f"{cpu:.1f} s of CPU"
    out = gdal.Open(str(tmp_path / "out.tif"))
    data = out.GetRasterBand(1).ReadAsArray(15104, 15104, 256, 256)
    around = out.GetRasterBand(1).ReadAsArray(14600, 14600, 1000, 1000)  # the block and 500 px around it
    assert (data != 0).all() and (around == 0).sum() == 1000 * 1000 - 256 * 256
    assert (tmp_path / "out.tif").stat().st_size < 5_000_000  # empty blocks are not written (SPARSE_OK)


def test_two_far_apart_blocks_run_two_groups_of_windows_and_give_the_dense_result(tmp_path: Path) -> None:
    """The empty gap costs no inference, and skipping it changes no pixel: the same blocks in a dense copy (every
    window run) give the same output."""
    raster = _sparse_landcover(tmp_path / "lc.tif", 3000, [(100, 100), (2600, 2500)])
    model, counter = _counting_model(tmp_path)
    translate(model, GdalReader(raster), tmp_path / "sparse_out.tif")
    assert counter.windows <= 8
    ref = load_model(tmp_path / "m.onnx", threads=1)
    dense = np.full((3000, 3000), 255, np.uint8)
    dense[100:356, 100:356] = gdal.Open(str(raster)).ReadAsArray(100, 100, 256, 256)
    dense[2500:2756, 2600:2856] = gdal.Open(str(raster)).ReadAsArray(2600, 2500, 256, 256)
    dense_path = write_tif(tmp_path / "dense.tif", dense, nodata=255,
                           geotransform=(500000.0, 30.0, 0.0, 4200000.0, 0.0, -30.0))
    translate(ref, GdalReader(dense_path), tmp_path / "dense_out.tif")
    a = gdal.Open(str(tmp_path / "sparse_out.tif")).ReadAsArray()
    b = gdal.Open(str(tmp_path / "dense_out.tif")).ReadAsArray()
    assert np.array_equal(a, b)


def _hung(tmp: Path) -> Path:
    return odd_models.save(odd_models.hung_model(default_contract("landcover_to_rgb")), tmp / "hung.onnx")


def test_a_cancel_stops_a_hung_model_at_once_and_leaves_no_file(tmp_path: Path) -> None:
    model = load_model(_hung(tmp_path), threads=1)
    lc = write_tif(tmp_path / "lc.tif", CODES[np.random.default_rng(0).integers(0, 10, (64, 64))])
    started = time.monotonic()
    result = translate(model, GdalReader(lc), tmp_path / "x.tif", is_canceled=lambda: time.monotonic() - started > 1.0)
    assert result.canceled and time.monotonic() - started < 15  # (the model never returns: any bound shows the stop)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hung.onnx", "lc.tif"]


def test_a_hung_batch_overruns_its_limit_and_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(watchdog, "FIRST_BATCH_LIMIT_S", 1.0)
    model = load_model(_hung(tmp_path), threads=1)
    lc = write_tif(tmp_path / "lc.tif", CODES[np.random.default_rng(0).integers(0, 10, (64, 64))])
    with pytest.raises(InferenceTimeoutError, match=r"hung.onnx: a batch of 1 window\(s\) ran for more than 1 s "
                                                    r"\(no window had finished yet\); the model seems to hang"):
        translate(model, GdalReader(lc), tmp_path / "x.tif")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hung.onnx", "lc.tif"]


def test_the_limit_follows_the_measured_speed() -> None:
    guard = Watchdog(object(), lambda: False)
    assert guard.limit_s(1) == watchdog.FIRST_BATCH_LIMIT_S
    guard.per_window_s = [0.3, 0.5, 0.4]
    assert guard.limit_s(1) == watchdog.MIN_LIMIT_S  # 25 x 0.4 s is below the floor
    guard.per_window_s = [4.0, 5.0, 6.0]
    assert guard.limit_s(4) == pytest.approx(25 * 5.0 * 4)


def test_a_slow_but_finishing_batch_is_not_stopped(tmp_path: Path) -> None:
    class Slow:
        def run(self, batch: np.ndarray) -> np.ndarray:
            time.sleep(0.3)
            return batch

    guard = Watchdog(Slow(), lambda: False)
    assert guard.run(np.zeros((2, 1, 4, 4), np.float32)).shape == (2, 1, 4, 4)
    assert guard.per_window_s and guard.per_window_s[0] >= 0.15


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_the_command_line_stops_a_hung_model_within_seconds_of_a_signal(tmp_path: Path, signum: int) -> None:
    model = _hung(tmp_path)
    lc = write_tif(tmp_path / "lc.tif", CODES[np.random.default_rng(0).integers(0, 10, (64, 64))])
    (tmp_path / "out").mkdir()
    process = subprocess.Popen(
        [sys.executable, "-m", "lcgan_qgis", "translate", "--model", str(model), "--input", str(lc), "--output",
         str(tmp_path / "out" / "x.tif"), "--threads", "1"], cwd=REPO, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        deadline = time.monotonic() + 120
        while not list((tmp_path / "out").glob(".*lcgan-partial*")):  # the run is inside the model now
            assert process.poll() is None and time.monotonic() < deadline, process.communicate()
            time.sleep(0.1)
        time.sleep(1.0)
        sent = time.monotonic()
        process.send_signal(signum)
        _out, err = process.communicate(timeout=30)
        assert time.monotonic() - sent < 10, "not stopped within 10 s"
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 128 + signum, err[-2000:]
    assert "cancelled: nothing was written" in err
    assert [p.name for p in (tmp_path / "out").iterdir()] == []


def _wide(tmp: Path, width: int, height: int = 48) -> Path:
    codes = CODES[np.random.default_rng(3).integers(0, 10, (height, width))]
    codes[:, width // 3: width // 3 + 40] = 255  # a gap of nodata across a stripe boundary's neighbourhood
    return write_tif(tmp / "wide.tif", codes, nodata=255)


def test_a_region_wider_than_the_strip_limit_runs_in_stripes_with_the_same_pixels(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lcgan_qgis.core.run import streaming
    from lcgan_qgis.core.run.engine import TranslateOptions
    from lcgan_qgis.core.run.settings import RunSettings, Windowing

    raster = _wide(tmp_path, 1000)
    model = load_model(write_pointwise(tmp_path / "m.onnx", "landcover_to_rgb"), threads=1)
    options = TranslateOptions(settings=RunSettings(windowing=Windowing(window_px=64, overlap_px=8)))
    translate(model, GdalReader(raster), tmp_path / "whole.tif", options)
    monkeypatch.setattr(streaming, "MAX_STRIP_WIDTH_PX", 256)
    monkeypatch.setattr(streaming, "STRIPE_PX", 256)
    translate(model, GdalReader(raster), tmp_path / "striped.tif", options)
    whole = gdal.Open(str(tmp_path / "whole.tif")).ReadAsArray()
    striped = gdal.Open(str(tmp_path / "striped.tif")).ReadAsArray()
    np.testing.assert_array_equal(striped, whole)


@pytest.mark.slow
def test_a_very_wide_strip_needs_memory_of_a_stripe_not_of_its_width(tmp_path: Path) -> None:
    """Before: buffers as wide as the raster (strip, blending band, block rows): 192 MB of Python allocations for a
    60,000 x 512 raster at the default window, 285 MB at 120,000, growing with the width. Now the peak stays that
    of one 8,192 px stripe plus the pre-scan's capped strips (measured: 114 and 115 MB at both widths)."""
    import tracemalloc

    raster = _wide(tmp_path, 120_000, 512)
    model = load_model(write_pointwise(tmp_path / "m.onnx", "landcover_to_rgb"), threads=1)
    tracemalloc.start()
    try:
        translate(model, GdalReader(raster), tmp_path / "out.tif")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 200_000_000, f"{peak / 1e6:.0f} MB"
    assert gdal.Open(str(tmp_path / "out.tif")).RasterXSize == 120_000
