"""``make demo`` end to end: the plugin's real Processing algorithms in a real QgsApplication, tiny models."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal

from lcgan_qgis.core.model.contract import Direction, Radiometry
from tests.fixtures.onnx_factory import default_contract, pointwise_model, save
from tools.demo import main, run_demo

EIGHT_BIT = Radiometry(mode="fixed", low=(0.0, 0.0, 0.0), high=(255.0, 255.0, 255.0))


def centroids(codes: tuple[int, ...]) -> np.ndarray:
    """One colour per class in the model's [-1, 1] space, at least 0.8 apart (points of a 3 x 3 x 2 lattice).

    As with a trained generator, the output spans the model's range: the two most common demo classes, evergreen
    forest (42) and shrub (52), take the opposite corners (-0.8, -0.8, -0.8) and (0.8, 0.8, 0.8), so each band's
    2-98 % range is the corners' range, which 'percentile' radiometry maps back to the same [-1, 1] colours
    (+-0.8 become +-1, 0 stays 0: still nearest to the right colour).
    """
    lattice = list(itertools.product((-0.8, 0.0, 0.8), (-0.8, 0.0, 0.8), (-0.8, 0.8)))
    corners = {42: (-0.8, -0.8, -0.8), 52: (0.8, 0.8, 0.8)}
    rest = iter(p for p in lattice if p not in corners.values())
    return np.array([corners[c] if c in corners else next(rest) for c in codes], dtype=np.float32)


def round_trip_models(folder: Path, radiometry: Radiometry) -> Path:
    """LC->RGB paints class i in colour i; RGB->LC is the nearest-colour classifier: a perfect round trip."""
    folder.mkdir(parents=True, exist_ok=True)
    lc2rgb = default_contract(Direction.LANDCOVER_TO_RGB, radiometry=radiometry)
    rgb2lc = default_contract(Direction.RGB_TO_LANDCOVER, radiometry=radiometry)
    colours = centroids(lc2rgb.scheme.codes)
    sharpness = 50.0
    save(pointwise_model(lc2rgb, weight=np.arctanh(colours).T), folder / "landcover_to_rgb.onnx")
    save(pointwise_model(rgb2lc, weight=2 * sharpness * colours, bias=-sharpness * (colours**2).sum(axis=1)),
         folder / "rgb_to_landcover.onnx")
    return folder


def test_demo_runs_both_algorithms_and_draws_the_quicklook(qgis_app: object, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    models = round_trip_models(tmp_path / "models", EIGHT_BIT)
    out = tmp_path / "out"
    docs_png = tmp_path / "docs" / "img" / "demo.png"
    assert main(["--out", str(out), "--size", "96", "--seed", "4", "--models", str(models), "--device", "cpu",
                 "--docs-png", str(docs_png)]) == 0
    assert docs_png.read_bytes() == (out / "demo.png").read_bytes()
    printed = capsys.readouterr().out
    assert "accuracy 100.0 %" in printed and "mIoU 1.000" in printed
    for name in ("demo_landcover_input.tif", "demo_rgb.tif", "demo_landcover.tif", "demo.png"):
        assert str((out / name).resolve()) in printed
    source = gdal.Open(str(out / "demo_landcover_input.tif"))
    for name, bands in (("demo_rgb.tif", 3), ("demo_landcover.tif", 1)):
        ds = gdal.Open(str(out / name))
        assert ds.RasterCount == bands
        assert ds.GetGeoTransform() == source.GetGeoTransform()
        assert ds.GetProjection() == source.GetProjection()
        assert (ds.RasterXSize, ds.RasterYSize) == (96, 96)
    np.testing.assert_array_equal(gdal.Open(str(out / "demo_landcover.tif")).ReadAsArray(), source.ReadAsArray())
    assert (out / "demo.png").stat().st_size > 20_000


def test_round_trip_with_a_landsat_dn_model(qgis_app: object, tmp_path: Path) -> None:
    """A land-cover model with 'fixed' radiometry in Landsat digital numbers reads lcgan's own 8-bit synthetic RGB
    back: the demo asks for RADIOMETRY=percentile (with the model's fixed range every 8-bit pixel would be -1)."""
    models = round_trip_models(tmp_path / "models", default_contract(Direction.RGB_TO_LANDCOVER).radiometry)
    result = run_demo(tmp_path / "out", size_px=64, seed=5, models_dir=models, device="cpu")
    assert result["agreement"].accuracy > 0.99


def test_missing_model_gives_a_message_not_a_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--out", str(tmp_path / "out"), "--models", str(tmp_path / "nothing-here")]) == 2
    err = capsys.readouterr().err
    assert "model file(s) missing" in err and "landcover_to_rgb.onnx" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()
