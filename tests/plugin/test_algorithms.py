"""Both Processing algorithms through ``processing.run``: real Zion clips and rasters built here, georeference,
codes and colour table, nodata, resolution handling, area of interest, cancel, and bad parameters."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal, osr

from lcgan_qgis.core.model.contract import Direction
from lcgan_qgis.core.resources import bundled_model_path
from tests.fixtures.plugin import NLCD, image_array, landcover_array, read, write_raster

LC2RGB, RGB2LC = "lcgan:landcover_to_rgb", "lcgan:rgb_to_landcover"


def _core_translate(model: Path, source: Path, out: Path) -> np.ndarray:
    """The same translation through the core alone (GdalReader), for comparison."""
    from lcgan_qgis.core.model.runtime import load_model
    from lcgan_qgis.core.rasters.gdal_io import GdalReader
    from lcgan_qgis.core.run.engine import translate

    with load_model(model, device="cpu") as m, GdalReader(source) as reader:
        translate(m, reader, out)
    return read(out)[0]


def _assert_same_grid(out: gdal.Dataset, source: Path) -> None:
    src = gdal.Open(str(source))
    assert (out.RasterXSize, out.RasterYSize) == (src.RasterXSize, src.RasterYSize)
    np.testing.assert_allclose(out.GetGeoTransform(), src.GetGeoTransform(), rtol=1e-12, atol=1e-6)
    a, b = osr.SpatialReference(), osr.SpatialReference()
    a.ImportFromWkt(out.GetProjection())
    b.ImportFromWkt(src.GetProjection())
    assert a.IsSame(b), (out.GetProjection(), src.GetProjection())


def _files(folder: Path) -> set[str]:
    """Files in ``folder``, hidden scratch included; GDAL's statistics side-cars of the inputs are left out."""
    return {p.name for p in folder.iterdir() if not p.name.endswith(".tif.aux.xml")}


def test_rgb_to_landcover_on_real_zion(lcgan, zion_clips, models, tmp_path: Path) -> None:
    out, conf = tmp_path / "lc.tif", tmp_path / "conf.tif"
    result = lcgan.run(RGB2LC, {"INPUT": str(zion_clips["rgb"]), "MODEL": str(models[Direction.RGB_TO_LANDCOVER]),
                                "OUTPUT": str(out), "CONFIDENCE": str(conf), "DEVICE": 1})
    assert result["OUTPUT"] == str(out) and result["CONFIDENCE"] == str(conf)
    assert result["PROVIDER"] == "CPUExecutionProvider" and result["TILES"] >= 1
    codes, ds = read(out)
    _assert_same_grid(ds, zion_clips["rgb"])
    band = ds.GetRasterBand(1)
    assert band.DataType == gdal.GDT_Byte and band.GetNoDataValue() == NLCD.nodata_code
    assert set(np.unique(codes).tolist()) <= {*NLCD.codes, NLCD.nodata_code}
    table = band.GetColorTable()
    for cls in NLCD.classes:
        assert table.GetColorEntry(cls.code)[:3] == cls.rgba[:3]
    np.testing.assert_array_equal(codes, _core_translate(models[Direction.RGB_TO_LANDCOVER], zion_clips["rgb"],
                                                         tmp_path / "core.tif"))
    confidence, conf_ds = read(conf)
    _assert_same_grid(conf_ds, zion_clips["rgb"])
    valid = codes != NLCD.nodata_code
    assert np.all(confidence[valid] >= 1.0 / len(NLCD) - 1e-6) and np.all(confidence[valid] <= 1.0 + 1e-6)


def test_landcover_to_rgb_on_real_zion(lcgan, zion_clips, models, tmp_path: Path) -> None:
    out = tmp_path / "rgb.tif"
    result = lcgan.run(LC2RGB, {"INPUT": str(zion_clips["landcover"]),
                                "MODEL": str(models[Direction.LANDCOVER_TO_RGB]), "OUTPUT": str(out)})
    assert result["OUTPUT"] == str(out)
    pixels, ds = read(out)
    _assert_same_grid(ds, zion_clips["landcover"])
    assert pixels.shape[0] == 3 and pixels.dtype == np.uint8
    assert [ds.GetRasterBand(b).GetColorInterpretation() for b in (1, 2, 3)] == [
        gdal.GCI_RedBand, gdal.GCI_GreenBand, gdal.GCI_BlueBand]
    np.testing.assert_array_equal(pixels, _core_translate(models[Direction.LANDCOVER_TO_RGB],
                                                          zion_clips["landcover"], tmp_path / "core.tif"))


def test_nodata_is_preserved_both_ways(lcgan, models, tmp_path: Path) -> None:
    lc = write_raster(tmp_path / "lc_in.tif", landcover_array(90, 130), nodata=255)
    lcgan.run(LC2RGB, {"INPUT": str(lc), "MODEL": str(models[Direction.LANDCOVER_TO_RGB]),
                       "OUTPUT": str(tmp_path / "rgb.tif")})
    rgb, ds = read(tmp_path / "rgb.tif")
    _assert_same_grid(ds, lc)
    nodata = landcover_array(90, 130) == 255
    assert np.all(rgb[:, nodata] == 0) and np.all(rgb[:, ~nodata] > 0)

    img = write_raster(tmp_path / "img_in.tif", image_array(70, 110), nodata=0)
    lcgan.run(RGB2LC, {"INPUT": str(img), "MODEL": str(models[Direction.RGB_TO_LANDCOVER]),
                       "OUTPUT": str(tmp_path / "lc.tif")})
    codes, ds = read(tmp_path / "lc.tif")
    _assert_same_grid(ds, img)
    nodata = np.all(image_array(70, 110) == 0, axis=0)
    assert np.all(codes[nodata] == 255) and set(np.unique(codes[~nodata]).tolist()) <= set(NLCD.codes)


def test_layer_object_and_band_mapping(lcgan, models, tmp_path: Path) -> None:
    """A VRT layer (not a plain file) with bands in B, G, R order, mapped back with BANDS=[3, 2, 1]."""
    from qgis.core import QgsRasterLayer

    pixels = image_array(40, 60, seed=5, nodata_corner=False)
    write_raster(tmp_path / "rgb.tif", pixels)
    gdal.BuildVRT(str(tmp_path / "bgr.vrt"), [str(tmp_path / "rgb.tif")], bandList=[3, 2, 1])
    layer = QgsRasterLayer(str(tmp_path / "bgr.vrt"), "bgr")
    model = str(models[Direction.RGB_TO_LANDCOVER])
    lcgan.run(RGB2LC, {"INPUT": layer, "MODEL": model, "BANDS": [3, 2, 1], "OUTPUT": str(tmp_path / "a.tif")})
    lcgan.run(RGB2LC, {"INPUT": str(tmp_path / "rgb.tif"), "MODEL": model, "OUTPUT": str(tmp_path / "b.tif")})
    np.testing.assert_array_equal(read(tmp_path / "a.tif")[0], read(tmp_path / "b.tif")[0])
    lcgan.run(RGB2LC, {"INPUT": layer, "MODEL": model, "BANDS": "3,2,1", "OUTPUT": str(tmp_path / "c.tif")})
    np.testing.assert_array_equal(read(tmp_path / "c.tif")[0], read(tmp_path / "b.tif")[0])
    lcgan.run(RGB2LC, {"INPUT": layer, "MODEL": model, "OUTPUT": str(tmp_path / "d.tif")})  # unmapped: B, G, R
    assert not np.array_equal(read(tmp_path / "d.tif")[0], read(tmp_path / "b.tif")[0])  # the mapping mattered


def test_extent_limits_the_work_and_the_output(lcgan, models, tmp_path: Path) -> None:
    lc = write_raster(tmp_path / "lc.tif", landcover_array(600, 600, nodata_corner=False), nodata=255)
    full = lcgan.run(LC2RGB, {"INPUT": str(lc), "MODEL": str(models[Direction.LANDCOVER_TO_RGB]),
                              "OUTPUT": str(tmp_path / "full.tif")})
    # columns 0..89, rows 0..59 of a raster whose top-left corner is (300000, 4150000), 30 m pixels
    part = lcgan.run(LC2RGB, {"INPUT": str(lc), "MODEL": str(models[Direction.LANDCOVER_TO_RGB]),
                              "EXTENT": "300000,302700,4148200,4150000 [EPSG:32612]",
                              "OUTPUT": str(tmp_path / "part.tif")})
    assert part["TILES"] < full["TILES"]
    rgb = read(tmp_path / "part.tif")[0]
    assert np.all(rgb[:, :60, :90] > 0) and np.all(rgb[:, 200:, :] == 0) and np.all(rgb[:, :, 200:] == 0)
    np.testing.assert_array_equal(rgb[:, :60, :90], read(tmp_path / "full.tif")[0][:, :60, :90])


@pytest.mark.parametrize("direction", list(Direction))
def test_coarse_layer_is_resampled_to_the_model_gsd_and_back(lcgan, models, tmp_path: Path,
                                                             direction: Direction) -> None:
    gt = (300000.0, 90.0, 0.0, 4150000.0, 0.0, -90.0)  # 3x the model's 30 m
    if direction is Direction.LANDCOVER_TO_RGB:
        source = write_raster(tmp_path / "in.tif", landcover_array(50, 70), gt, nodata=255)
    else:
        source = write_raster(tmp_path / "in.tif", image_array(50, 70), gt, nodata=0)
    log: list[str] = []
    from qgis.core import QgsProcessingFeedback

    class Feedback(QgsProcessingFeedback):
        def pushInfo(self, info: str) -> None:
            log.append(info)

    lcgan.run(f"lcgan:{direction.value}", {"INPUT": str(source), "MODEL": str(models[direction]),
                                            "OUTPUT": str(tmp_path / "out.tif")}, feedback=Feedback())
    assert any("differs from the model's 30 m" in line and "210 x 150 grid" in line for line in log), log
    assert any("Resampled the result" in line for line in log), log
    out, ds = read(tmp_path / "out.tif")
    _assert_same_grid(ds, source)
    if direction is Direction.RGB_TO_LANDCOVER:
        assert set(np.unique(out).tolist()) <= {*NLCD.codes, 255}
        assert ds.GetRasterBand(1).GetColorTable() is not None
        assert np.all(out[: 50 // 4 - 1, : 70 // 4 - 1] == 255)
    else:
        assert np.all(out[:, : 50 // 4 - 1, : 70 // 4 - 1] == 0) and np.all(out[:, 20:, 20:] > 0)
    assert _files(tmp_path) == {"in.tif", "out.tif", "out.qml", "out.qmd"}  # no scratch left behind


def test_cancel_after_first_progress_leaves_no_file(lcgan, models, tmp_path: Path) -> None:
    from qgis.core import QgsProcessingException, QgsProcessingFeedback

    class CancelOnProgress(QgsProcessingFeedback):
        def __init__(self) -> None:
            super().__init__()
            self.progressChanged.connect(lambda _p: self.cancel())

    lc = write_raster(tmp_path / "lc.tif", landcover_array(1100, 1100), nodata=255)
    feedback = CancelOnProgress()
    with pytest.raises(QgsProcessingException, match="Canceled: nothing was written"):
        lcgan.run(LC2RGB, {"INPUT": str(lc), "MODEL": str(models[Direction.LANDCOVER_TO_RGB]), "BATCH": 1,
                           "OUTPUT": str(tmp_path / "out.tif")}, feedback=feedback)
    assert feedback.isCanceled()
    assert _files(tmp_path) == {"lc.tif"}


def test_missing_model_argument_uses_the_bundled_model_or_says_how_to_fix_it(lcgan, tmp_path: Path) -> None:
    from qgis.core import QgsProcessingException

    lc = write_raster(tmp_path / "lc.tif", landcover_array(40, 40), nodata=255)
    params = {"INPUT": str(lc), "OUTPUT": str(tmp_path / "out.tif")}
    if bundled_model_path(Direction.LANDCOVER_TO_RGB).is_file():
        assert lcgan.run(LC2RGB, params)["OUTPUT"] == str(tmp_path / "out.tif")
    else:
        with pytest.raises(QgsProcessingException, match=r"bundled landcover_to_rgb model is not installed.*"
                                                         r"Choose a model file"):
            lcgan.run(LC2RGB, params)


def _bad_cases(tmp: Path, models: dict[Direction, Path]) -> list[tuple[str, str, dict, str]]:
    lc = write_raster(tmp / "lc.tif", landcover_array(40, 40), nodata=255)
    rgb = write_raster(tmp / "rgb.tif", image_array(40, 40), nodata=0)
    unknown = landcover_array(40, 40)
    unknown[0, :7] = 99
    odd = write_raster(tmp / "odd.tif", unknown, nodata=255)
    no_crs = write_raster(tmp / "nocrs.tif", landcover_array(40, 40), epsg=None, nodata=255)
    lc_model, rgb_model = str(models[Direction.LANDCOVER_TO_RGB]), str(models[Direction.RGB_TO_LANDCOVER])
    out = str(tmp / "out.tif")
    cases = [
        ("missing model", LC2RGB, {"INPUT": str(lc), "MODEL": str(tmp / "nope.onnx"), "OUTPUT": out},
         r"Model file not found: .*nope\.onnx"),
        ("model of the other direction", LC2RGB, {"INPUT": str(lc), "MODEL": rgb_model, "OUTPUT": out},
         r"translates rgb_to_landcover, not landcover_to_rgb"),
        ("imagery given as land cover", LC2RGB, {"INPUT": str(rgb), "MODEL": lc_model, "OUTPUT": out},
         r"Layer 'rgb' has 3 bands; a land-cover raster has one band"),
        ("band past the band count", RGB2LC, {"INPUT": str(rgb), "MODEL": rgb_model, "BANDS": [1, 2, 5],
                                              "OUTPUT": out},
         r"Band\(s\) 5 do not exist in layer 'rgb', which has 3 band\(s\)"),
        ("extent elsewhere", LC2RGB, {"INPUT": str(lc), "MODEL": lc_model, "OUTPUT": out,
                                      "EXTENT": "0,10,0,10 [EPSG:32612]"}, r"does not overlap layer 'lc'"),
        ("unknown codes", LC2RGB, {"INPUT": str(odd), "MODEL": lc_model, "OUTPUT": out}, r"99 \(7 px\)"),
        ("no CRS", LC2RGB, {"INPUT": str(no_crs), "MODEL": lc_model, "OUTPUT": out}, r"Layer 'nocrs' has no CRS"),
        ("land cover given as imagery", RGB2LC, {"INPUT": str(lc), "MODEL": rgb_model, "OUTPUT": out},
         r"lc: has 1 band\(s\), but the model needs 3 \(red, green, blue\)\. Its values \(\d+(, \d+)*\) are class "
         r"codes of the scheme .*: it is a land-cover map\. Translate it with 'Land cover → synthetic RGB' "
         r"\(lcgan:landcover_to_rgb\) instead\.$"),
        ("output is the input", LC2RGB, {"INPUT": str(lc), "MODEL": lc_model, "OUTPUT": str(lc)},
         r"is the input raster itself"),
        ("output not GeoTIFF", LC2RGB, {"INPUT": str(lc), "MODEL": lc_model, "OUTPUT": str(tmp / "out.png")},
         r"must be a GeoTIFF"),
    ]
    from lcgan_qgis.core.model.runtime import describe_providers

    if describe_providers("auto")[0] == "CPUExecutionProvider":  # no usable GPU here
        cases.append(("CUDA without a GPU", LC2RGB, {"INPUT": str(lc), "MODEL": lc_model, "DEVICE": 2, "OUTPUT": out},
                      r"CUDA was requested but cannot be used: .*Use device 'cpu' or 'auto'"))
    return cases


def test_bad_parameters_name_the_problem(lcgan, models, tmp_path: Path) -> None:
    from qgis.core import QgsProcessingException

    for name, algorithm, params, message in _bad_cases(tmp_path, models):
        before = _files(tmp_path)
        with pytest.raises(QgsProcessingException, match=message):
            lcgan.run(algorithm, params)
        assert _files(tmp_path) == before, name


def test_results_loaded_by_processing_are_named_styled_and_grouped(lcgan, models, tmp_path: Path) -> None:
    """As from the toolbox: Processing loads the output and our post-processor styles it."""
    from qgis.core import QgsPalettedRasterRenderer, QgsProject

    img = write_raster(tmp_path / "scene.tif", image_array(50, 60), nodata=0)
    try:
        lcgan.runAndLoadResults(RGB2LC, {"INPUT": str(img), "MODEL": str(models[Direction.RGB_TO_LANDCOVER]),
                                         "OUTPUT": str(tmp_path / "lc.tif")})
        group = QgsProject.instance().layerTreeRoot().findGroup("lcgan")
        assert group is not None
        layers = [node.layer() for node in group.findLayers()]
        assert [layer.name() for layer in layers] == ["scene -> land cover (rgb_to_landcover)"]  # (model file)
        assert isinstance(layers[0].renderer(), QgsPalettedRasterRenderer)
        present = set(np.unique(read(tmp_path / "lc.tif")[0]).tolist()) - {NLCD.nodata_code}
        assert {c.label for c in layers[0].renderer().classes()} == {f"{c.code} {c.name}" for c in NLCD.classes
                                                                      if c.code in present}
        assert "AI-generated predicted land cover" in layers[0].metadata().abstract()
        assert len(QgsProject.instance().layerTreeRoot().findLayers()) == 1
    finally:
        QgsProject.instance().clear()


@pytest.mark.parametrize("shape", [(1, 1), (10, 3000), (3000, 10)])
def test_tiny_and_thin_rasters(lcgan, models, tmp_path: Path, shape: tuple[int, int]) -> None:
    codes = landcover_array(*shape, nodata_corner=False)
    lc = write_raster(tmp_path / "lc.tif", codes, nodata=255)
    lcgan.run(LC2RGB, {"INPUT": str(lc), "MODEL": str(models[Direction.LANDCOVER_TO_RGB]),
                       "OUTPUT": str(tmp_path / "rgb.tif")})
    rgb, ds = read(tmp_path / "rgb.tif")
    _assert_same_grid(ds, lc)
    assert rgb.reshape(3, *shape).min() > 0


@pytest.mark.parametrize("pixel_m", [30.0, 90.0])  # on the layer's grid, and through the resampling path
def test_unwritable_output_folder_is_named(lcgan, models, tmp_path: Path, pixel_m: float) -> None:
    """/proc takes no new files, even from root."""
    from qgis.core import QgsProcessingException

    lc = write_raster(tmp_path / "lc.tif", landcover_array(20, 20), (300000.0, pixel_m, 0.0, 4150000.0, 0.0,
                                                                      -pixel_m), nodata=255)
    with pytest.raises(QgsProcessingException, match=r"(Cannot write|not writable).*/proc"):
        lcgan.run(LC2RGB, {"INPUT": str(lc), "MODEL": str(models[Direction.LANDCOVER_TO_RGB]),
                           "OUTPUT": "/proc/lcgan_out.tif"})
    assert not Path("/proc/lcgan_out.tif").exists()


def test_help_texts_come_from_the_help_file_keyed_by_algorithm_id(lcgan) -> None:
    from qgis.core import QgsApplication

    from lcgan_qgis.plugin.processing_provider.base import _help_texts

    provider = QgsApplication.processingRegistry().providerById("lcgan")
    own = ["landcover_to_rgb", "rgb_to_landcover", "translate_mosaic"]  # (fine-tuning and scenarios keep their own)
    assert sorted(_help_texts()) == own and set(own) <= {a.name() for a in provider.algorithms()}
    for algorithm in (a for a in provider.algorithms() if a.name() in own):
        text = algorithm.shortHelpString()
        assert text.startswith(_help_texts()[algorithm.name()][:40]) and "by more than 10 %," in text
        assert "{" not in text
