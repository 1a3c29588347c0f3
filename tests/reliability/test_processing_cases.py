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
from osgeo import gdal, osr

from lcgan_qgis.core.model.contract import Direction, Radiometry
from tests.fixtures.onnx_factory import default_contract, pointwise_model, save
from tests.fixtures.plugin import NLCD, image_array, landcover_array, write_raster

from . import odd_models
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


def _vrt_over(tmp: Path) -> tuple[Path, Path]:
    """(in.vrt, the land cover it reads)."""
    source = write_raster(tmp / "lc.tif", landcover_array(40, 40), nodata=255)
    gdal.BuildVRT(str(tmp / "in.vrt"), [str(source)]).FlushCache()
    return tmp / "in.vrt", source


def _nan_model(tmp: Path) -> Path:
    return odd_models.save(odd_models.odd_model(default_contract(Direction.RGB_TO_LANDCOVER), add=float("nan")),
                           tmp / "nan.onnx")


def _nested_model(tmp: Path) -> Path:
    contract = default_contract(Direction.LANDCOVER_TO_RGB)
    model = odd_models.with_metadata_text(pointwise_model(contract), odd_models.deeply_nested_metadata(contract))
    return odd_models.save(model, tmp / "nested.onnx")


def _folder(path: Path) -> Path:
    path.mkdir()
    return path


def _with_alpha(path: Path, pixels: np.ndarray, transparent_cols: int) -> Path:
    """``pixels`` plus an alpha band whose left ``transparent_cols`` columns are 0."""
    bands, rows, cols = pixels.shape
    ds = gdal.GetDriverByName("GTiff").Create(str(path), cols, rows, bands + 1, gdal.GDT_UInt16,
                                              ["PHOTOMETRIC=RGB", "ALPHA=YES"])
    ds.SetGeoTransform((300000.0, 30.0, 0.0, 4150000.0, 0.0, -30.0))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32612)
    ds.SetProjection(srs.ExportToWkt())
    for b in range(bands):
        ds.GetRasterBand(b + 1).WriteArray(pixels[b])
    alpha = np.full((rows, cols), 65535, np.uint16)
    alpha[:, :transparent_cols] = 0
    ds.GetRasterBand(bands + 1).WriteArray(alpha)
    ds = None
    return path


def _with_mask(path: Path, codes: np.ndarray, masked_rows: int) -> Path:
    """Land cover whose top ``masked_rows`` rows hold 0 (no class code) and are masked out by a ``.msk`` band."""
    codes = codes.copy()
    codes[:masked_rows] = 0
    write_raster(path, codes)
    ds = gdal.Open(str(path), gdal.GA_Update)
    ds.CreateMaskBand(gdal.GMF_PER_DATASET)
    mask = np.full(codes.shape, 255, np.uint8)
    mask[:masked_rows] = 0
    ds.GetRasterBand(1).GetMaskBand().WriteArray(mask)
    ds = None
    return path


SIXTY_M = (300000.0, 60.0, 0.0, 4150000.0, 0.0, -60.0)  # 2x the models' 30 m: resampled to 30 m and back


# build(tmp, models) -> (algorithm, parameters without OUTPUT (or with it, to write onto a given file))
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
    Case("land cover without a CRS", lambda t, m: (LC2RGB, {
        "INPUT": str(write_raster(t / "nocrs.tif", landcover_array(40, 40), epsg=None, nodata=255)),
        "MODEL": str(m[Direction.LANDCOVER_TO_RGB])}),
        r"Layer 'nocrs' has no CRS, or its CRS has no linear units.*Assign or reproject it to a projected CRS.*or "
        r"switch off the resolution check"),
    Case("1-band imagery without band mapping", lambda t, m: (RGB2LC, {
        "INPUT": str(write_raster(t / "pan.tif", image_array(40, 40)[:1], nodata=0)),
        "MODEL": str(m[Direction.RGB_TO_LANDCOVER])}),
        r"pan: has 1 band\(s\), but the model needs 3 \(red, green, blue\)\. If it is a land-cover map, use "
        r"'Land cover → synthetic RGB' \(lcgan:landcover_to_rgb\); if it is a grey image, give a band mapping, "
        r"e\.g\. bands=1,1,1\."),
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
    Case("output is a file the input VRT reads", lambda t, m: (LC2RGB, {
        "INPUT": str((vrt := _vrt_over(t))[0]), "MODEL": str(m[Direction.LANDCOVER_TO_RGB]), "OUTPUT": str(vrt[1])}),
        r"The output .*lc\.tif is .*lc\.tif, a file the input raster reads; choose another file name"),
    Case("confidence output is the output under another spelling", lambda t, m: (RGB2LC, {
        "INPUT": str(write_raster(t / "rgb.tif", image_array(40, 40), nodata=0)),
        "MODEL": str(m[Direction.RGB_TO_LANDCOVER]), "CONFIDENCE": str(_folder(t / "sub") / ".." / "out.tif")}),
        r"The output and the confidence output are the same file"),
    Case("resampled run whose confidence output cannot be written", lambda t, m: (RGB2LC, {
        "INPUT": str(write_raster(t / "rgb60.tif", image_array(40, 40), SIXTY_M, nodata=0)),
        "MODEL": str(m[Direction.RGB_TO_LANDCOVER]), "CONFIDENCE": str(_folder(t / "conf.tif"))}),
        r"The confidence output .*conf\.tif is a folder; give a file name"),
    Case("model returning NaN", lambda t, m: (RGB2LC, {
        "INPUT": str(write_raster(t / "rgb.tif", image_array(40, 40), nodata=0)), "MODEL": str(_nan_model(t))}),
        r"nan\.onnx: the model returned \d+ non-finite value\(s\) \(nan\) .* The model is broken"),
    Case("model with deeply nested metadata", lambda t, m: (LC2RGB, {
        "INPUT": str(write_raster(t / "lc.tif", landcover_array(40, 40), nodata=255)),
        "MODEL": str(_nested_model(t))}),
        r"nested\.onnx: metadata 'lcgan' is nested too deeply to be read"),
]


@pytest.mark.parametrize("case", FAILING, ids=[c.id for c in FAILING])
def test_processing_refuses(case: Case, lcgan: Any, models: dict[Direction, Path], tmp_path: Path) -> None:
    from qgis.core import QgsProcessingException

    algorithm, params = case.build(tmp_path, models)
    if "OUTPUT" not in params:  # (a case that writes onto a given file checks that file instead)
        output = tmp_path / "out.tif"
        output.write_bytes(b"an earlier result")
        params = {**params, "OUTPUT": str(output)}
    before = snapshot(tmp_path)
    with pytest.raises(QgsProcessingException, match=case.message):
        lcgan.run(algorithm, params)
    assert_unchanged(tmp_path, before)
    assert_no_partials(tmp_path)


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


def _left_columns_nodata(columns: int) -> Callable[[Path, list[str]], None]:
    def check(out: Path, log: list[str]) -> None:
        codes = gdal.Open(str(out)).ReadAsArray()
        assert (codes[:, :columns] == NLCD.nodata_code).all() and (codes[:, columns:] != NLCD.nodata_code).all()
        assert not any("has 4 bands" in line for line in log), log  # the alpha band is not a data band
    return check


def _top_rows_nodata(rows: int) -> Callable[[Path, list[str]], None]:
    def check(out: Path, _log: list[str]) -> None:
        pixels = gdal.Open(str(out)).ReadAsArray()
        assert (pixels[:, :rows] == 0).all() and (pixels[:, rows:] > 0).all()
    return check


def _has_class_names(out: Path, log: list[str]) -> None:
    assert any("Resampled the result" in line for line in log), log
    ds = gdal.Open(str(out))  # (dataset and band held in names: GDAL's bindings misbehave on temporaries)
    ds.GetMetadata()  # (as gdalinfo and QGIS do: GDAL 3.6 reads the .aux.xml side-car lazily)
    band = ds.GetRasterBand(1)
    names = band.GetCategoryNames() or []
    assert NLCD.classes[0].name in names and names[NLCD.classes[0].code] == NLCD.classes[0].name
    hidden = [p.name for p in out.parent.iterdir() if p.name.startswith(".")]
    assert not hidden, hidden


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
    Case("EPSG:4326 land cover: measured on the ground, translated at the model's GSD", lambda t, m: (LC2RGB, {
        "INPUT": str(src := write_raster(t / "wgs84.tif", landcover_array(40, 40), DEGREES, 4326, nodata=255)),
        "MODEL": str(m[Direction.LANDCOVER_TO_RGB])},
        lambda out, log: (_grid_check(src)(out, log),
                          _log_check("is in a geographic CRS (degrees); at its centre latitude")(out, log))), None),
    Case("EPSG:4326, resolution check off", lambda t, m: (LC2RGB, {
        "INPUT": str(src := write_raster(t / "wgs84.tif", landcover_array(40, 40), DEGREES, 4326, nodata=255)),
        "MODEL": str(m[Direction.LANDCOVER_TO_RGB]), "CHECK_GSD": False}, _grid_check(src)), None),
    Case("RGBA imagery: transparent pixels are nodata", lambda t, m: (RGB2LC, {
        "INPUT": str(_with_alpha(t / "rgba.tif", image_array(40, 40, nodata_corner=False), 8)),
        "MODEL": str(m[Direction.RGB_TO_LANDCOVER]), "RADIOMETRY": 1}, _left_columns_nodata(8)), None),
    Case("land cover with a mask band: masked pixels are nodata", lambda t, m: (LC2RGB, {
        "INPUT": str(_with_mask(t / "masked.tif", landcover_array(40, 40, nodata_corner=False), 10)),
        "MODEL": str(m[Direction.LANDCOVER_TO_RGB])}, _top_rows_nodata(10)), None),
    Case("resampled run keeps the class names and leaves no hidden file", lambda t, m: (RGB2LC, {
        "INPUT": str(write_raster(t / "rgb60.tif", image_array(40, 40), SIXTY_M, nodata=0)),
        "MODEL": str(m[Direction.RGB_TO_LANDCOVER])}, _has_class_names), None),
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
