"""`python -m lcgan_qgis` as a user runs it: real processes, real files, exit codes and one-line errors."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.fixtures.cli import ENV, REPO, cli
from tests.fixtures.onnx_factory import write_pointwise
from tests.fixtures.rasters import read_tif, write_tif


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("cli")
    pixels = np.random.default_rng(0).integers(6000, 16000, (3, 120, 130)).astype(np.uint16)
    return {
        "model": write_pointwise(folder / "rgb2lc.onnx", "rgb_to_landcover"),
        "image": write_tif(folder / "image.tif", pixels),
        "folder": folder,
    }


def test_translate_prints_a_summary(files: dict[str, Path]) -> None:
    out, conf = files["folder"] / "lc.tif", files["folder"] / "conf.tif"
    done = cli("translate", "--model", str(files["model"]), "--input", str(files["image"]), "--output", str(out),
               "--overlap", "8", "--batch", "2", "--device", "cpu", "--confidence", str(conf), "--window", "64")
    assert done.returncode == 0, done.stderr
    summary = done.stdout.strip().splitlines()[-1]
    assert summary.startswith(f"{out}: CPUExecutionProvider, ") and " tiles, " in summary and summary.endswith("Mpx/s")
    assert read_tif(out).shape == (1, 120, 130) and read_tif(conf).dtype == np.float32
    from osgeo import gdal

    assert gdal.Open(str(out)).GetMetadata()["LCGAN_AI_GENERATED"] == "YES"  # the provenance, as from QGIS


def test_translate_writes_polygons(files: dict[str, Path]) -> None:
    from osgeo import ogr

    out, vector = files["folder"] / "lc_v.tif", files["folder"] / "lc.gpkg"
    done = cli("translate", "--model", str(files["model"]), "--input", str(files["image"]), "--output", str(out),
               "--vector", str(vector), "--min-polygon-px", "4")
    assert done.returncode == 0, done.stderr
    source = ogr.Open(str(vector))
    rows = [(f.GetField("code"), f.GetField("pixels")) for f in source.GetLayer(0)]
    source = None
    assert rows and min(px for _code, px in rows) >= 4 and " polygons (patches under 4 px merged" in done.stdout


def test_bad_input_exits_2_with_one_line(files: dict[str, Path]) -> None:
    done = cli("translate", "--model", str(files["model"]), "--input", str(files["image"]), "--output",
               str(files["folder"] / "x.tif"), "--bands", "1,2,7")
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "band(s) [7]" in errors[0] and "Traceback" not in done.stderr
    assert not (files["folder"] / "x.tif").exists()


def test_missing_model_and_cuda_without_gpu(files: dict[str, Path]) -> None:
    done = cli("info", str(files["folder"] / "nope.onnx"))
    assert done.returncode == 2 and done.stderr.strip() == f"error: Model file not found: {files['folder']}/nope.onnx"
    done = cli("info", str(files["model"]), "--device", "cuda")
    if done.returncode == 0:
        pytest.skip("a usable CUDA GPU is present")
    assert done.returncode == 2 and "CUDA was requested but cannot be used" in done.stderr


def test_info_prints_the_contract(files: dict[str, Path]) -> None:
    done = cli("info", str(files["model"]))
    assert done.returncode == 0
    for expected in ("direction:    rgb_to_landcover", "tile:         64 px, recommended overlap 8 px",
                     "42  #1c5f2c  Evergreen Forest", "provider:     CPU"):
        assert expected in done.stdout


def test_ctrl_c_cancels_and_leaves_nothing(files: dict[str, Path]) -> None:
    big = write_tif(files["folder"] / "big.tif", np.random.default_rng(1).integers(
        6000, 16000, (3, 3000, 3000)).astype(np.uint16))
    out = files["folder"] / "big_out.tif"
    proc = subprocess.Popen([sys.executable, "-m", "lcgan_qgis", "translate", "--model", str(files["model"]),
                             "--input", str(big), "--output", str(out), "--window", "128"], cwd=REPO, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    proc.stdout.readline()  # "model: ..." once the model is loaded; the 9 Mpx run takes seconds after it
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, (stdout, stderr)
    assert "cancelled: nothing was written" in stderr
    assert not out.exists() and not [p for p in files["folder"].iterdir() if "partial" in p.name]


def test_the_resolution_policy_is_the_job_s(files: dict[str, Path]) -> None:
    """A raster in degrees is measured on the ground and translated at the model's GSD; one without a CRS is refused
    as in QGIS, and runs at its own pixel size with --no-gsd-check."""
    pixels = np.random.default_rng(2).integers(6000, 16000, (3, 40, 50)).astype(np.uint16)
    degrees = write_tif(files["folder"] / "deg.tif", pixels, geotransform=(-113.0, 0.0003, 0, 37.3, 0, -0.0003),
                        epsg=4326)
    out = files["folder"] / "deg_lc.tif"
    done = cli("translate", "--model", str(files["model"]), "--input", str(degrees), "--output", str(out))
    assert done.returncode == 0, done.stderr
    assert "is in a geographic CRS (degrees); at its centre latitude 37.29°: a pixel of 0.0003 x 0.0003 CRS " \
           "units is 26.6 x 33.3 m on the ground" in done.stdout
    assert read_tif(out).shape == (1, 40, 50)
    no_crs = write_tif(files["folder"] / "nocrs.tif", pixels, epsg=None)
    args = ("translate", "--model", str(files["model"]), "--input", str(no_crs), "--output", str(out))
    refused = cli(*args)
    assert refused.returncode == 2 and "has no CRS, or its CRS has no linear units" in refused.stderr
    done = cli(*args, "--no-gsd-check")
    assert done.returncode == 0, done.stderr
    assert "Resolution check off" in done.stdout and read_tif(out).shape == (1, 40, 50)
