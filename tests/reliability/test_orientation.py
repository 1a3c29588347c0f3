"""Orientation (issue 24): south-up and east-left rasters are presented north-up once, in the file reader every
caller shares (``core/rasters/orientation.py``, used by ``GdalReader``), so the command line, the engine and
Processing give the same pixels for a mirrored copy of a scene as for the scene itself."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal

from lcgan_qgis.core.model.runtime import load_model
from lcgan_qgis.core.rasters.gdal_io import GdalReader
from lcgan_qgis.core.rasters.orientation import Orientation
from lcgan_qgis.core.rasters.raster import Window
from lcgan_qgis.core.run.engine import translate
from tests.fixtures.plugin import landcover_array, write_raster

REPO = Path(__file__).resolve().parents[2]
ZION = REPO.parent / "shared" / "data" / "zion" / "nlcd2011_on_landsat_grid.tif"
NORTH_UP = (300000.0, 30.0, 0.0, 4150000.0, 0.0, -30.0)
MIRRORS = {"south-up": (True, False), "east-left": (False, True), "south-up and east-left": (True, True)}


def _scene(tmp: Path) -> tuple[np.ndarray, tuple[float, ...], str]:
    """A 160 x 200 px crop of the Zion land cover (a synthetic map where the data are absent)."""
    if ZION.exists():
        ds = gdal.Open(str(ZION))
        return ds.ReadAsArray(400, 300, 200, 160), ds.GetGeoTransform(), ds.GetProjection()
    return landcover_array(160, 200), NORTH_UP, ""


def _mirrored(tmp: Path, codes: np.ndarray, gt: tuple[float, ...], flip_rows: bool, flip_cols: bool) -> Path:
    """The same ground stored mirrored: rows south to north and/or columns east to west."""
    h, w = codes.shape
    x0, dx, _, y0, _, dy = gt
    stored = codes[::-1] if flip_rows else codes
    stored = stored[:, ::-1] if flip_cols else stored
    mirrored_gt = (x0 + w * dx if flip_cols else x0, -dx if flip_cols else dx, 0.0,
                   y0 + h * dy if flip_rows else y0, 0.0, -dy if flip_rows else dy)
    return write_raster(tmp / "mirrored.tif", np.ascontiguousarray(stored), mirrored_gt, nodata=255)


@pytest.mark.parametrize("mirror", MIRRORS, ids=list(MIRRORS))
def test_the_reader_presents_a_mirrored_raster_north_up(tmp_path: Path, mirror: str) -> None:
    codes, gt, _ = _scene(tmp_path)
    north = write_raster(tmp_path / "north.tif", codes, gt, nodata=255)
    mirrored = _mirrored(tmp_path, codes, gt, *MIRRORS[mirror])
    with GdalReader(north) as a, GdalReader(mirrored) as b:
        assert b.info.geotransform == pytest.approx(a.info.geotransform)
        for window in (Window(0, 0, 200, 160), Window(13, 7, 64, 32), Window(150, 100, 50, 60)):
            np.testing.assert_array_equal(b.read(window, [1]), a.read(window, [1]))


def test_orientation_rules() -> None:
    assert not Orientation.of(NORTH_UP).mirrored
    assert Orientation.of((0, 30, 0, 0, 0, 30)) == Orientation(True, False)
    assert Orientation.of((0, -30, 0, 0, 0, -30)) == Orientation(False, True)
    assert Orientation.of((0, 30, 5, 0, 5, -30)) == Orientation()  # rotated: refused elsewhere, not mirrored here
    assert Orientation(True, False).north_up((0, 30, 0, 100, 0, 10), 4, 8) == (0, 30, 0, 180, 0, -10)
    assert Orientation(True, True).stored_window(1, 2, 3, 4, 10, 20) == (6, 14, 3, 4)


@pytest.mark.parametrize("mirror", MIRRORS, ids=list(MIRRORS))
def test_the_engine_translates_a_mirrored_raster_as_the_north_up_one(tmp_path: Path, mirror: str, models) -> None:
    codes, gt, _ = _scene(tmp_path)
    north = write_raster(tmp_path / "north.tif", codes, gt, nodata=255)
    mirrored = _mirrored(tmp_path, codes, gt, *MIRRORS[mirror])
    model = load_model(next(p for d, p in models.items() if d.value == "landcover_to_rgb"), threads=1)
    translate(model, GdalReader(north), tmp_path / "a.tif")
    translate(model, GdalReader(mirrored), tmp_path / "b.tif")
    a, b = gdal.Open(str(tmp_path / "a.tif")), gdal.Open(str(tmp_path / "b.tif"))
    assert b.GetGeoTransform() == pytest.approx(a.GetGeoTransform())
    np.testing.assert_array_equal(b.ReadAsArray(), a.ReadAsArray())


def test_the_command_line_and_processing_agree_on_a_south_up_copy(lcgan, models, tmp_path: Path) -> None:
    """Before: Processing (QGIS's provider, north-up) and the command line (rows as stored) disagreed: 86 % of the
    pixels on a real scene."""
    codes, gt, _ = _scene(tmp_path)
    south_up = _mirrored(tmp_path, codes, gt, True, False)
    model = str(next(p for d, p in models.items() if d.value == "landcover_to_rgb"))
    lcgan.run("lcgan:landcover_to_rgb", {"INPUT": str(south_up), "MODEL": model, "DEVICE": 1, "CHECK_GSD": False,
                                         "OUTPUT": str(tmp_path / "qgis.tif")})
    done = subprocess.run([sys.executable, "-m", "lcgan_qgis", "translate", "--model", model, "--input",
                           str(south_up), "--output", str(tmp_path / "cli.tif"), "--device", "cpu", "--no-gsd-check"],
                          cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    qgis, cli = gdal.Open(str(tmp_path / "qgis.tif")), gdal.Open(str(tmp_path / "cli.tif"))
    assert cli.GetGeoTransform() == pytest.approx(qgis.GetGeoTransform())
    np.testing.assert_array_equal(cli.ReadAsArray(), qgis.ReadAsArray())
