"""Reliability table of the Processing algorithms (``processing.run``, as the toolbox, models and ``qgis_process``
call them): each bad input gets a ``QgsProcessingException`` with its specific message, and the output folder is
left exactly as it was. Every failing case writes to an OUTPUT that already holds an earlier result, so the same
check proves that nothing partial was written and that the old file was not damaged.

The second table holds the unusual inputs that must *work*, each with the check that it worked as documented.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from osgeo import gdal

from lcgan_qgis.core.contract import Direction, Radiometry
from tests.onnx_factory import default_contract, pointwise_model, save
from tests.plugin.conftest import NLCD, image_array, landcover_array, write_raster

from .helpers import Case, assert_no_partials, assert_unchanged, snapshot

LC2RGB, RGB2LC = "lcgan:landcover_to_rgb", "lcgan:rgb_to_landcover"
DEGREES = (-113.0, 0.0003, 0.0, 37.3, 0.0, -0.0003)
COARSE = (300000.0, 300.0, 0.0, 4150000.0, 0.0, -300.0)  # 10x the models' 30 m


def _feedback(log: list[str]) -> Any:
    from qgis.core import QgsProcessingFeedback

    class Feedback(QgsProcessingFeedback):
        def pushInfo(self, info: str) -> None:
            log.append(info)

    return Feedback()


def _no_metadata_model(tmp: Path) -> Path:
    model = pointwise_model(default_contract(Direction.LANDCOVER_TO_RGB))
    del model.metadata_props[:]
    return save(model, tmp / "bare.onnx")


def _truncated_model(tmp: Path, models: dict[Direction, Path]) -> Path:
    data = models[Direction.LANDCOVER_TO_RGB].read_bytes()
    (tmp / "cut.onnx").write_bytes(data[: len(data) // 2])
    return tmp / "cut.onnx"


def _collar(tmp: Path) -> Path:
    codes = landcover_array(40, 40, nodata_corner=False)
    codes[:, :3] = 0
    return write_raster(tmp / "collar.tif", codes)  # no nodata value


# build(tmp, models) -> (algorithm, parameters without OUTPUT)
FAILING: list[Case] = [
    Case("float raster as land cover", lambda t, m: (LC2RGB, {
        "INPUT": str(write_raster(t / "float.tif", landcover_array(40, 40).astype(np.float32), nodata=255)),
        "MODEL": str(m[Direction.LANDCOVER_TO_RGB])}),
        r"float: is float32, but land cover must be integer class codes \(Byte/UInt16\) of the scheme 'NLCD 2011.*'\. "
        r"Convert it \(e\.g\. gdal_translate -ot Byte\)"),
    Case("all-nodata land cover", lambda t, m: (LC2RGB, {
        "INPUT": str(write_raster(t / "empty.tif", np.full((40, 40), 255, np.uint8), nodata=255)),
        "MODEL": str(m[Direction.LANDCOVER_TO_RGB])}),
        r"empty: every pixel is nodata \(codes \[255\]\); there is nothing to translate"),
    Case("land cover without nodata value, zero collar", lambda t, m: (LC2RGB, {
        "INPUT": str(_collar(t)), "MODEL": str(m[Direction.LANDCOVER_TO_RGB])}),
        r"collar: 1 value\(s\) are not codes .*: 0 \(120 px\)\..* set it as the raster's nodata value"),
    Case("pixels 10x the model's GSD", lambda t, m: (LC2RGB, {
        "INPUT": str(write_raster(t / "coarse.tif", landcover_array(40, 40), COARSE, nodata=255)),
        "MODEL": str(m[Direction.LANDCOVER_TO_RGB])}),
        r"Layer 'coarse' has 300 x 300 m pixels, the model was trained at 30 m: bringing it to the model's resolution "
        r"would enlarge its 40 x 40 px to a 400 x 400 px grid \(10x per axis, 100x the pixels; the limit is 4x per "
        r"axis and 400 Mpx\)\. Either switch off the resolution check \(CHECK_GSD=false.*or resample the layer "
        r"yourself first \(e\.g\. gdalwarp -tr 30 30"),
    Case("EPSG:4326 land cover", lambda t, m: (LC2RGB, {
        "INPUT": str(write_raster(t / "wgs84.tif", landcover_array(40, 40), DEGREES, 4326, nodata=255)),
        "MODEL": str(m[Direction.LANDCOVER_TO_RGB])}),
        r"Layer 'wgs84' is in a geographic CRS \(degrees\).*Reproject it to a projected CRS.*or switch off the "
        r"resolution check"),
    Case("1-band imagery without band mapping", lambda t, m: (RGB2LC, {
        "INPUT": str(write_raster(t / "pan.tif", image_array(40, 40)[:1], nodata=0)),
        "MODEL": str(m[Direction.RGB_TO_LANDCOVER])}),
        r"pan: has 1 band\(s\), but the model needs 3 \(red, green, blue\)\. Give a band mapping, e\.g\. bands=1,1,1"),
    Case("all-zero imagery, model's fixed radiometry", lambda t, m: (RGB2LC, {
        "INPUT": str(write_raster(t / "black.tif", np.zeros((3, 40, 40), np.uint16))),
        "MODEL": str(m[Direction.RGB_TO_LANDCOVER])}),
        r"black: every sampled pixel has the same value in every band .* constant imagery cannot be translated"),
    Case("all-zero imagery, percentile radiometry", lambda t, m: (RGB2LC, {
        "INPUT": str(write_raster(t / "black.tif", np.zeros((3, 40, 40), np.uint16))),
        "MODEL": str(m[Direction.RGB_TO_LANDCOVER]), "RADIOMETRY": 1}),
        r"black: band\(s\) \[1, 2, 3\] have no contrast .* all-constant imagery cannot be translated"),
    Case("model without lcgan metadata", lambda t, m: (LC2RGB, {
        "INPUT": str(write_raster(t / "lc.tif", landcover_array(40, 40), nodata=255)),
        "MODEL": str(_no_metadata_model(t))}),
        r"bare\.onnx carries no lcgan metadata"),
    Case("truncated model file", lambda t, m: (LC2RGB, {
        "INPUT": str(write_raster(t / "lc.tif", landcover_array(40, 40), nodata=255)),
        "MODEL": str(_truncated_model(t, m))}),
        r"Cannot load model .*cut\.onnx: not a valid ONNX model \(truncated, corrupt or not ONNX\?\)"),
    Case("band mapping of one band too many", lambda t, m: (RGB2LC, {
        "INPUT": str(write_raster(t / "rgb.tif", image_array(40, 40), nodata=0)),
        "MODEL": str(m[Direction.RGB_TO_LANDCOVER]), "BANDS": "1,2,3,3"}),
        r"rgb: band mapping \[1, 2, 3, 3\] has 4 entries; the model needs 3"),
]


@pytest.mark.parametrize("case", FAILING, ids=[c.id for c in FAILING])
def test_processing_refuses(case: Case, lcgan: Any, models: dict[Direction, Path], tmp_path: Path) -> None:
    from qgis.core import QgsProcessingException

    algorithm, params = case.build(tmp_path, models)
    output = tmp_path / "out.tif"
    output.write_bytes(b"an earlier result")
    before = snapshot(tmp_path)
    with pytest.raises(QgsProcessingException, match=case.message):
        lcgan.run(algorithm, {**params, "OUTPUT": str(output)})
    assert_unchanged(tmp_path, before)


def _grid_check(source: Path, north_up: bool = False) -> Callable[[Path, list[str]], None]:
    def check(out: Path, _log: list[str]) -> None:
        src, ds = gdal.Open(str(source)), gdal.Open(str(out))
        if north_up:  # QGIS shows a rotated raster through a north-up warped VRT; the output is on that grid
            gt = ds.GetGeoTransform()
            assert gt[2] == gt[4] == 0.0 and gt[1] > 0 > gt[5]
        else:
            np.testing.assert_allclose(ds.GetGeoTransform(), src.GetGeoTransform(), rtol=1e-9, atol=1e-12)
            assert (ds.RasterXSize, ds.RasterYSize) == (src.RasterXSize, src.RasterYSize)
    return check


def _log_check(*needles: str) -> Callable[[Path, list[str]], None]:
    def check(_out: Path, log: list[str]) -> None:
        for needle in needles:
            assert any(needle in line for line in log), (needle, log)
    return check


def _nan_is_nodata(out: Path, _log: list[str]) -> None:
    codes = gdal.Open(str(out)).ReadAsArray()
    assert codes[5, 5] == NLCD.nodata_code and (codes != NLCD.nodata_code).sum() == codes.size - 1


def _float_with_nan(tmp: Path) -> Path:
    pixels = image_array(30, 30, nodata_corner=False).astype(np.float32)
    pixels[1, 5, 5] = np.nan
    return write_raster(tmp / "float.tif", pixels)


def _rotated(tmp: Path) -> Path:
    return write_raster(tmp / "rotated.tif", landcover_array(40, 40), (300000.0, 30.0, 5.0, 4150000.0, 5.0, -30.0),
                        nodata=255)


# build(tmp, models) -> (algorithm, parameters without OUTPUT, check(out, log))
WORKING: list[Case] = [
    Case("rotated geotransform", lambda t, m: (LC2RGB, {
        "INPUT": str(src := _rotated(t)), "MODEL": str(m[Direction.LANDCOVER_TO_RGB])}, _grid_check(src, True)),
        None),
    Case("1-band imagery mapped to 1,1,1", lambda t, m: (RGB2LC, {
        "INPUT": str(src := write_raster(t / "pan.tif", image_array(30, 30)[:1], nodata=0)),
        "MODEL": str(m[Direction.RGB_TO_LANDCOVER]), "BANDS": [1, 1, 1]}, _grid_check(src)), None),
    Case("4-band imagery without mapping", lambda t, m: (RGB2LC, {
        "INPUT": str(write_raster(t / "four.tif", np.concatenate([image_array(30, 30)] * 2)[:4], nodata=0)),
        "MODEL": str(m[Direction.RGB_TO_LANDCOVER])}, _log_check("four has 4 bands; using bands 1,2,3 as red, green, "
                                                                   "blue")), None),
    Case("4-band imagery mapped to 4,3,2", lambda t, m: (RGB2LC, {
        "INPUT": str(src := write_raster(t / "four.tif", np.concatenate([image_array(30, 30)] * 2)[:4], nodata=0)),
        "MODEL": str(m[Direction.RGB_TO_LANDCOVER]), "BANDS": [4, 3, 2]}, _grid_check(src)), None),
    Case("float32 imagery with NaN", lambda t, m: (RGB2LC, {
        "INPUT": str(_float_with_nan(t)), "MODEL": str(m[Direction.RGB_TO_LANDCOVER])}, _nan_is_nodata), None),
    Case("pixels 10x the GSD, resolution check off", lambda t, m: (LC2RGB, {
        "INPUT": str(src := write_raster(t / "coarse.tif", landcover_array(40, 40), COARSE, nodata=255)),
        "MODEL": str(m[Direction.LANDCOVER_TO_RGB]), "CHECK_GSD": False},
        lambda out, log: (_grid_check(src)(out, log), _log_check("Resolution check off")(out, log))), None),
    Case("EPSG:4326, resolution check off", lambda t, m: (LC2RGB, {
        "INPUT": str(src := write_raster(t / "wgs84.tif", landcover_array(40, 40), DEGREES, 4326, nodata=255)),
        "MODEL": str(m[Direction.LANDCOVER_TO_RGB]), "CHECK_GSD": False}, _grid_check(src)), None),
    Case("existing output is replaced", lambda t, m: (LC2RGB, {
        "INPUT": str(src := write_raster(t / "lc.tif", landcover_array(40, 40), nodata=255)),
        "MODEL": str(m[Direction.LANDCOVER_TO_RGB])}, _grid_check(src)), None),
]


@pytest.mark.parametrize("case", WORKING, ids=[c.id for c in WORKING])
def test_processing_handles(case: Case, lcgan: Any, models: dict[Direction, Path], tmp_path: Path) -> None:
    algorithm, params, check = case.build(tmp_path, models)
    output = tmp_path / "out.tif"
    output.write_bytes(b"an earlier result")
    log: list[str] = []
    result = lcgan.run(algorithm, {**params, "OUTPUT": str(output)}, feedback=_feedback(log))
    assert result["OUTPUT"] == str(output) and gdal.Open(str(output)) is not None  # replaced by a real GeoTIFF
    check(output, log)
    assert_no_partials(tmp_path)


def test_radiometry_parameter_reaches_the_engine(lcgan: Any, tmp_path: Path) -> None:
    """8-bit imagery and a model with 'fixed' radiometry in Landsat digital numbers: the model default reads every
    pixel as the bottom of the range (one class) and says so; RADIOMETRY=percentile reads the image's own range."""
    model = save(pointwise_model(default_contract(Direction.RGB_TO_LANDCOVER, radiometry=Radiometry(
        "fixed", (6000.0, 6500.0, 7000.0), (16000.0, 15000.0, 14000.0))), seed=3), tmp_path / "dn.onnx")
    image = write_raster(tmp_path / "eight.tif", (np.random.default_rng(0).random((3, 60, 60)) * 250).astype(np.uint8))
    classes = {}
    for key, mode in (("default", 0), ("percentile", 1), ("fixed", 2)):
        log: list[str] = []
        lcgan.run(RGB2LC, {"INPUT": str(image), "MODEL": str(model), "RADIOMETRY": mode,
                           "OUTPUT": str(tmp_path / f"{key}.tif")}, feedback=_feedback(log))
        classes[key] = len(np.unique(gdal.Open(str(tmp_path / f"{key}.tif")).ReadAsArray()))
        expected = {"default": "Radiometry: fixed (the model's default; pixel values are read in the training "
                               "imagery's units, 6000-16000, 6500-15000, 7000-14000 per band)",
                    "percentile": "Radiometry: percentile (chosen; this raster's own 2-98 % range is the model's "
                                  "range)",
                    "fixed": "Radiometry: fixed (chosen;"}[key]
        assert any(expected in line for line in log), log
        if key != "percentile":
            assert any("8-bit but the model expects values up to 16000" in line for line in log), log
    assert classes["default"] == classes["fixed"] == 1 and classes["percentile"] > 3
