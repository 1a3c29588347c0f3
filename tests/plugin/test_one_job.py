"""One job for every caller: a raster off the model's GSD gives the same pixels through the command line (the file
reader's resampling RasterIO) as through the Processing algorithm (QGIS's provider resampling)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lcgan_qgis.core.model.contract import Direction
from tests.fixtures.plugin import image_array, landcover_array, read, write_raster

REPO = Path(__file__).resolve().parents[2]
ALGORITHMS = {d: f"lcgan:{d.value}" for d in Direction}
CASES = [(d, pixel_m) for d in Direction for pixel_m in (60.0, 15.0)]  # the models are 30 m: enlarge, shrink


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lcgan_qgis", "translate", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(REPO)})


@pytest.mark.parametrize(("direction", "pixel_m"), CASES, ids=[f"{d.value}-{m:g}m" for d, m in CASES])
def test_a_raster_off_the_model_gsd_gives_the_same_pixels_through_the_cli_and_processing(
        lcgan, models, tmp_path: Path, direction: Direction, pixel_m: float) -> None:
    grid = (300000.0, pixel_m, 0.0, 4150000.0, 0.0, -pixel_m)
    if direction is Direction.LANDCOVER_TO_RGB:
        src = write_raster(tmp_path / "in.tif", landcover_array(70, 90), grid, nodata=255)
    else:
        src = write_raster(tmp_path / "in.tif", image_array(70, 90), grid, nodata=0)
    model = str(models[direction])
    lcgan.run(ALGORITHMS[direction], {"INPUT": str(src), "MODEL": model, "DEVICE": 1,
                                      "OUTPUT": str(tmp_path / "qgis.tif")})
    done = _cli("--model", model, "--input", str(src), "--output", str(tmp_path / "cli.tif"), "--device", "cpu")
    assert done.returncode == 0, done.stderr
    width, height = round(90 * pixel_m / 30), round(70 * pixel_m / 30)
    assert f"translating on a {width} x {height} grid at the model's resolution" in done.stdout  # as in QGIS
    (qgis, qgis_ds), (cli, cli_ds) = read(tmp_path / "qgis.tif"), read(tmp_path / "cli.tif")
    assert qgis.shape == cli.shape == ((3, 70, 90) if direction is Direction.LANDCOVER_TO_RGB else (70, 90))
    assert cli_ds.GetGeoTransform() == qgis_ds.GetGeoTransform() == grid
    np.testing.assert_array_equal(cli, qgis)
