"""What users get out of a run, through real Processing runs in a real QgsApplication: a legend of codes and names
(the classes present, or all), a QML style and QMD provenance beside the file (it opens styled and marked as
AI-generated in a fresh project), overviews on every output, provenance tags in the GeoTIFF, polygons with code and
name; inputs users have (a web tile layer from a local file:// tile folder, a raster in degrees); short labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal, ogr, osr

from lcgan_qgis.core.model.contract import Direction
from lcgan_qgis.core.rasters.provenance import TRAINED_ALGORITHMIC_MEDIA
from tests.fixtures.plugin import NLCD, image_array, landcover_array, read, write_raster

LC2RGB, RGB2LC = "lcgan:landcover_to_rgb", "lcgan:rgb_to_landcover"
MAX_LABEL_CHARS = 36  # what the Processing dialog shows at its default width without cutting


def _fresh_layer(path: Path):
    """``path`` opened as the QGIS desktop adds a file to any project: the layer reads the .qml beside it, and the
    desktop then loads the .qmd (QGIS's ``QgsAppLayerHandling::postProcessAddedLayer`` calls
    ``loadDefaultStyle`` and ``loadDefaultMetadata``)."""
    from qgis.core import QgsRasterLayer

    layer = QgsRasterLayer(str(path), "reopened", "gdal")
    assert layer.isValid()
    assert layer.loadDefaultMetadata()[1]
    return layer


def test_land_cover_legend_qml_qmd_overviews_and_provenance(lcgan, models, tmp_path: Path) -> None:
    from qgis.core import QgsPalettedRasterRenderer

    image = write_raster(tmp_path / "scene.tif", image_array(600, 520), nodata=0)
    out, conf = tmp_path / "lc.tif", tmp_path / "conf.tif"
    lcgan.run(RGB2LC, {"INPUT": str(image), "MODEL": str(models[Direction.RGB_TO_LANDCOVER]), "OUTPUT": str(out),
                       "CONFIDENCE": str(conf)})
    codes, ds = read(out)
    present = set(np.unique(codes).tolist()) - {NLCD.nodata_code}
    # overviews: codes decimated by nearest neighbour (only codes of the scheme), confidence averaged
    assert ds.GetRasterBand(1).GetOverviewCount() == 2
    overview = ds.GetRasterBand(1).GetOverview(0).ReadAsArray()
    assert overview.shape == (300, 260) and set(np.unique(overview).tolist()) <= present | {NLCD.nodata_code}
    assert gdal.Open(str(conf)).GetRasterBand(1).GetOverviewCount() == 2
    # provenance in the GeoTIFF
    tags = ds.GetMetadata()
    assert tags["LCGAN_AI_GENERATED"] == "YES" and tags["LCGAN_KIND"] == "predicted land cover"
    assert tags["LCGAN_MODEL"] == "rgb_to_landcover.onnx" and tags["LCGAN_MODEL_VERSION"] == "test"
    assert tags["LCGAN_INPUT"] == "scene" and tags["LCGAN_CREATED"].startswith("20")
    assert "AI-generated predicted land cover" in tags["TIFFTAG_IMAGEDESCRIPTION"]
    assert gdal.Open(str(conf)).GetMetadata()["LCGAN_AI_GENERATED"] == "YES"
    # the file opens styled, with its provenance, in a fresh project: the legend lists the codes present
    assert (tmp_path / "lc.qml").is_file() and (tmp_path / "lc.qmd").is_file()
    layer = _fresh_layer(out)
    renderer = layer.renderer()
    assert isinstance(renderer, QgsPalettedRasterRenderer)
    assert [(c.value, c.label, c.color.name()) for c in renderer.classes()] == [
        (c.code, f"{c.code} {c.name}", c.hex) for c in NLCD.classes if c.code in present]
    assert len(present) < len(NLCD.classes)  # (so "present only" is really tested)
    assert "AI-generated predicted land cover" in layer.metadata().abstract()
    assert "AI-generated" in layer.metadata().keywords()["lcgan"]


def test_legend_lists_every_class_on_request(lcgan, models, tmp_path: Path) -> None:
    image = write_raster(tmp_path / "scene.tif", image_array(60, 50), nodata=0)
    lcgan.run(RGB2LC, {"INPUT": str(image), "MODEL": str(models[Direction.RGB_TO_LANDCOVER]), "ALL_CLASSES": True,
                       "OUTPUT": str(tmp_path / "lc.tif")})
    layer = _fresh_layer(tmp_path / "lc.tif")  # (kept: the renderer belongs to it)
    labels = [c.label for c in layer.renderer().classes()]
    assert labels == [f"{c.code} {c.name}" for c in NLCD.classes]


@pytest.mark.parametrize("pixel_m", [30.0, 90.0])  # on the layer's grid, and warped back from the model's GSD
def test_synthetic_rgb_is_tagged_as_ai_generated_with_overviews(lcgan, models, tmp_path: Path,
                                                                 pixel_m: float) -> None:
    from qgis.core import QgsMultiBandColorRenderer

    lc = write_raster(tmp_path / "map.tif", landcover_array(520, 600), (300000.0, pixel_m, 0, 4150000.0, 0, -pixel_m),
                      nodata=255)
    out = tmp_path / "rgb.tif"
    lcgan.run(LC2RGB, {"INPUT": str(lc), "MODEL": str(models[Direction.LANDCOVER_TO_RGB]), "OUTPUT": str(out)})
    ds = gdal.Open(str(out))
    tags = ds.GetMetadata()
    assert tags["LCGAN_AI_GENERATED"] == "YES" and tags["LCGAN_KIND"] == "synthetic RGB imagery"
    assert tags["DIGITAL_SOURCE_TYPE"] == TRAINED_ALGORITHMIC_MEDIA
    assert "It is not a real satellite or aerial scene." in tags["TIFFTAG_IMAGEDESCRIPTION"]
    assert tags["LCGAN_INPUT"] == "map" and tags["LCGAN_MODEL"] == "landcover_to_rgb.onnx"
    assert all(ds.GetRasterBand(b).GetOverviewCount() == 2 for b in (1, 2, 3))
    layer = _fresh_layer(out)
    assert isinstance(layer.renderer(), QgsMultiBandColorRenderer)
    assert "not a real satellite or aerial scene" in layer.metadata().abstract()


def test_polygons_carry_code_and_name_and_respect_the_minimum_area(lcgan, models, tmp_path: Path) -> None:
    from scipy import ndimage

    image = write_raster(tmp_path / "scene.tif", image_array(120, 100, seed=3), nodata=0)
    model = str(models[Direction.RGB_TO_LANDCOVER])
    lcgan.run(RGB2LC, {"INPUT": str(image), "MODEL": model, "OUTPUT": str(tmp_path / "lc.tif"),
                       "VECTOR": str(tmp_path / "all.gpkg")})
    codes = read(tmp_path / "lc.tif")[0]
    patches = sum(ndimage.label(codes == code)[1] for code in set(np.unique(codes).tolist()) - {255})
    names = {c.code: c.name for c in NLCD.classes}
    features = _features(tmp_path / "all.gpkg")
    assert len(features) == patches > 50  # one polygon per 4-connected patch of a class
    assert all(name == names[code] for code, name, _px in features)
    assert sum(px for *_c, px in features) == int(np.count_nonzero(codes != 255))
    result = lcgan.run(RGB2LC, {"INPUT": str(image), "MODEL": model, "OUTPUT": str(tmp_path / "lc2.tif"),
                                "VECTOR": str(tmp_path / "big.gpkg"), "MIN_AREA": 20})
    big = _features(tmp_path / "big.gpkg")
    assert result["VECTOR"] == str(tmp_path / "big.gpkg")
    assert 0 < len(big) < len(features) and min(px for *_c, px in big) >= 20


def _features(path: Path) -> list[tuple[int, str, int]]:
    source = ogr.Open(str(path))
    layer = source.GetLayer(0)
    assert [layer.GetLayerDefn().GetFieldDefn(i).GetName() for i in range(3)] == ["code", "name", "pixels"]
    rows = [(f.GetField("code"), f.GetField("name"), f.GetField("pixels")) for f in layer]
    source = None
    return rows


def test_a_raster_in_degrees_is_translated_at_the_model_gsd_on_the_ground(lcgan, models, tmp_path: Path) -> None:
    from qgis.core import QgsProcessingFeedback

    log: list[str] = []

    class Feedback(QgsProcessingFeedback):
        def pushInfo(self, info: str) -> None:
            log.append(info)

    lc = write_raster(tmp_path / "deg.tif", landcover_array(80, 90), (-113.0, 0.0002, 0, 37.3, 0, -0.0002), 4326,
                      nodata=255)
    lcgan.run(LC2RGB, {"INPUT": str(lc), "MODEL": str(models[Direction.LANDCOVER_TO_RGB]),
                       "OUTPUT": str(tmp_path / "rgb.tif")}, feedback=Feedback())
    assert any("Layer 'deg' is in a geographic CRS (degrees); at its centre latitude 37.29°: a pixel of 0.0002 x "
               "0.0002 CRS units is 17.7 x 22.2 m on the ground." in line and "translating on a" in line
               for line in log), log
    out, ds = read(tmp_path / "rgb.tif")
    assert out.shape == (3, 80, 90) and ds.GetGeoTransform() == pytest.approx((-113.0, 0.0002, 0, 37.3, 0, -0.0002))
    srs = osr.SpatialReference(wkt=ds.GetProjection())
    assert srs.IsGeographic() and srs.GetAuthorityCode(None) == "4326"


@pytest.fixture(scope="module")
def xyz_layer(qgis_app, xyz_tiles: str):
    """An XYZ tile layer over a local ``file://`` tile folder (see ``xyz_tiles``)."""
    from qgis.core import QgsRasterLayer

    layer = QgsRasterLayer(xyz_tiles, "basemap", "wms")
    assert layer.isValid(), layer.error().message()
    return layer


def test_a_web_tile_layer_is_read_over_the_area_at_the_model_gsd(lcgan, models, xyz_layer, tmp_path: Path) -> None:
    from qgis.core import QgsProcessingException, QgsProcessingFeedback

    log: list[str] = []

    class Feedback(QgsProcessingFeedback):
        def pushInfo(self, info: str) -> None:
            log.append(info)

    params = {"INPUT": xyz_layer, "MODEL": str(models[Direction.RGB_TO_LANDCOVER]), "RADIOMETRY": 1,
              "OUTPUT": str(tmp_path / "lc.tif")}
    with pytest.raises(QgsProcessingException, match="Layer 'basemap' is a web tile service: it has no pixels of "
                                                     "its own, so choose the area to translate"):
        lcgan.run(RGB2LC, params)
    area = "322000,326000,4124000,4128000 [EPSG:32612]"
    lcgan.run(RGB2LC, {**params, "EXTENT": area}, feedback=Feedback())
    assert any("Layer 'basemap' is a web tile service: reading the chosen area as a" in line
               and "in a Mercator CRS" in line for line in log), log
    codes, ds = read(tmp_path / "lc.tif")
    gt = ds.GetGeoTransform()
    latitude = np.degrees(np.arctan(np.sinh((gt[3] + gt[5] * ds.RasterYSize / 2) / 6378137.0)))
    assert gt[1] * np.cos(np.radians(latitude)) == pytest.approx(30.0, rel=1e-3)  # 30 m on the ground
    assert osr.SpatialReference(wkt=ds.GetProjection()).GetAuthorityCode(None) == "3857"
    valid = codes[codes != NLCD.nodata_code]
    assert valid.size > 0.9 * codes.size and set(np.unique(valid).tolist()) <= set(NLCD.codes)


def test_parameter_labels_are_short_and_the_help_explains_each(lcgan) -> None:
    from qgis.core import QgsApplication

    for algorithm_id in (LC2RGB, RGB2LC, "lcgan:translate_mosaic"):
        algorithm = QgsApplication.processingRegistry().algorithmById(algorithm_id)
        help_text = algorithm.shortHelpString()
        for parameter in algorithm.parameterDefinitions():
            label = parameter.description()
            assert len(label) <= MAX_LABEL_CHARS and "(empty" not in label, label
            assert label in help_text, (algorithm_id, label)
    assert QgsApplication.processingRegistry().algorithmById(RGB2LC).displayName() == "RGB imagery → land cover"
