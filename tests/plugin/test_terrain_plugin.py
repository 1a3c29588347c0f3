"""Terrain-aware land cover -> RGB in QGIS: ``lcgan:landcover_to_rgb`` with ELEVATION and the sun parameters through
``processing.run`` on the real Zion rasters, and the dock's elevation field, bundled-model choice and hints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal

from lcgan_qgis.core.model.contract import Direction
from tests.fixtures.onnx_factory import write_terrain_pointwise
from tests.fixtures.plugin import add_layer, landcover_array, make_dock, read, recording_feedback, write_raster

LC2RGB = "lcgan:landcover_to_rgb"
TASK_TIMEOUT_MS = 120_000


@pytest.fixture(scope="module")
def terrain_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_terrain_pointwise(tmp_path_factory.mktemp("terrain") / "terrain.onnx")


@pytest.fixture(scope="module")
def srtm(zion_dir: Path) -> Path:
    path = zion_dir / "srtm_on_landsat_grid.tif"
    if not path.is_file():
        pytest.skip(f"the Zion SRTM raster is absent ({path})")
    return path


def _core(model: Path, landcover: Path, dem: Path, out: Path, **sun: float) -> np.ndarray:
    """The same translation through the core alone (GdalReader + ElevationReader)."""
    from lcgan_qgis.core.model.runtime import load_model
    from lcgan_qgis.core.rasters.gdal_io import GdalReader
    from lcgan_qgis.core.run.engine import TranslateOptions, translate
    from lcgan_qgis.core.run.settings import RunSettings, Terrain
    from lcgan_qgis.core.terrain.elevation import ElevationReader

    options = TranslateOptions(settings=RunSettings(terrain=Terrain(**sun)))
    with load_model(model, "cpu") as m, GdalReader(landcover) as reader, ElevationReader(dem, reader.info) as e:
        translate(m, reader, out, options, elevation=e)
    return read(out)[0]


def test_processing_with_elevation_on_real_zion(lcgan, zion_clips, srtm, terrain_model, tmp_path: Path) -> None:
    """The NLCD clip (EPSG:26912, 31.5 m) with SRTM on the Landsat grid (EPSG:32612, 30 m): resampled on the fly."""
    out = tmp_path / "rgb.tif"
    feedback = recording_feedback()
    result = lcgan.run(LC2RGB, {"INPUT": str(zion_clips["landcover"]), "MODEL": str(terrain_model),
                                "ELEVATION": str(srtm), "OUTPUT": str(out)}, feedback=feedback)
    assert result["OUTPUT"] == str(out)
    pixels, ds = read(out)
    src = gdal.Open(str(zion_clips["landcover"]))
    assert (ds.RasterXSize, ds.RasterYSize) == (src.RasterXSize, src.RasterYSize)
    assert pixels[1].std() > 5  # the slopes of the canyons
    assert ds.GetMetadataItem("LCGAN_ELEVATION") == Path(str(srtm)).name  # the DEM is named in the provenance too
    assert f"and the elevation '{Path(str(srtm)).name}'" in ds.GetMetadataItem("TIFFTAG_IMAGEDESCRIPTION")
    np.testing.assert_array_equal(pixels, _core(terrain_model, zion_clips["landcover"], srtm, tmp_path / "c.tif"))
    assert any("Terrain: hillshade, slope, relative_elevation from srtm_on_landsat_grid.tif (resampled" in line
               for line in feedback.lines), feedback.lines

    sun = tmp_path / "sun.tif"
    lcgan.run(LC2RGB, {"INPUT": str(zion_clips["landcover"]), "MODEL": str(terrain_model), "ELEVATION": str(srtm),
                       "SUN_AZIMUTH": 300.0, "SUN_ELEVATION": 25.0, "OUTPUT": str(sun)})
    evening = read(sun)[0]
    np.testing.assert_array_equal(evening, _core(terrain_model, zion_clips["landcover"], srtm, tmp_path / "c2.tif",
                                                 sun_azimuth_deg=300.0, sun_elevation_deg=25.0))
    assert np.abs(evening[0].astype(int) - pixels[0]).mean() > 10  # another sun, other shading


def test_processing_without_elevation_for_a_terrain_model_says_so(lcgan, zion_clips, terrain_model,
                                                                  tmp_path: Path) -> None:
    from qgis.core import QgsProcessingException

    out = tmp_path / "rgb.tif"
    with pytest.raises(QgsProcessingException, match="terrain-aware: it needs an elevation raster.*ELEVATION"):
        lcgan.run(LC2RGB, {"INPUT": str(zion_clips["landcover"]), "MODEL": str(terrain_model), "OUTPUT": str(out)})
    assert not out.exists()


def test_processing_elevation_for_a_map_only_model_is_ignored(lcgan, zion_clips, srtm, models,
                                                              tmp_path: Path) -> None:
    feedback = recording_feedback()
    out = tmp_path / "rgb.tif"
    lcgan.run(LC2RGB, {"INPUT": str(zion_clips["landcover"]), "MODEL": str(models[Direction.LANDCOVER_TO_RGB]),
                       "ELEVATION": str(srtm), "OUTPUT": str(out)}, feedback=feedback)
    assert any("reads no elevation" in line and "is ignored" in line for line in feedback.lines), feedback.lines
    plain = tmp_path / "plain.tif"
    lcgan.run(LC2RGB, {"INPUT": str(zion_clips["landcover"]), "MODEL": str(models[Direction.LANDCOVER_TO_RGB]),
                       "OUTPUT": str(plain)})
    np.testing.assert_array_equal(read(out)[0], read(plain)[0])
    assert gdal.Open(str(out)).GetMetadataItem("LCGAN_ELEVATION") is None  # (an ignored DEM is no input)


def test_processing_refuses_a_bad_sun_with_the_core_s_message(lcgan, zion_clips, srtm, terrain_model,
                                                              tmp_path: Path) -> None:
    from qgis.core import QgsProcessingException

    with pytest.raises(QgsProcessingException, match="sun_elevation_deg must be in"):
        lcgan.run(LC2RGB, {"INPUT": str(zion_clips["landcover"]), "MODEL": str(terrain_model),
                           "ELEVATION": str(srtm), "SUN_ELEVATION": 0.0, "OUTPUT": str(tmp_path / "x.tif")})


def test_dock_runs_a_terrain_model_with_the_elevation_layer(iface, qtbot, terrain_model, models,
                                                            tmp_path: Path) -> None:
    rows, cols = 90, 110
    yy, xx = np.mgrid[0:rows, 0:cols]
    dem = write_raster(tmp_path / "dem.tif", (1500 + 8.0 * xx + 40 * np.sin(yy / 9.0)).astype(np.float32))
    lc = add_layer(write_raster(tmp_path / "lc.tif", landcover_array(rows, cols), nodata=255), "map")
    elevation = add_layer(dem, "dem")
    dock = make_dock(iface, Direction.LANDCOVER_TO_RGB, lc, terrain_model, tmp_path / "o.tif")
    qtbot.addWidget(dock)
    assert dock.elevation_combo.isVisibleTo(dock) and dock.bundled_combo.isVisibleTo(dock)
    assert "Needed" in dock.elevation_hint.text() and "hillshade" in dock.elevation_hint.text()
    text = dock.info_box.toPlainText()
    assert "Elevation: needed (it paints relief)" in text and "hillshade, slope, relative_elevation" in text
    assert dock.run() is None  # no elevation chosen: refused before any task, with the reason
    assert any("needs an elevation raster" in item.text() for item in iface.messageBar().items())

    dock.elevation_combo.setLayer(elevation)
    dock.sun_spins[0][1].setValue(250.0)
    request, reader = dock.build_request()
    reader.close()
    terrain = request.settings.terrain
    assert (terrain.elevation_path, terrain.sun_azimuth_deg, terrain.sun_elevation_deg) == (str(dem), 250.0, None)
    dock.run_button.click()
    qtbot.waitUntil(lambda: dock.last_outcome is not None, timeout=TASK_TIMEOUT_MS)
    assert dock.last_outcome.job is not None, dock.last_outcome.error
    assert any("Terrain: hillshade" in line for line in dock.last_outcome.messages)
    assert read(tmp_path / "o.tif")[0][1].std() > 5

    dock.model_widget.setFilePath(str(models[Direction.LANDCOVER_TO_RGB]))
    assert dock.elevation_hint.text() == "Not used: this model is map only."
    assert "Elevation: not used (map only)" in dock.info_box.toPlainText()
    dock.set_direction(Direction.RGB_TO_LANDCOVER)
    assert not dock.elevation_combo.isVisibleTo(dock) and not dock.sun_spins[0][1].isVisibleTo(dock)


def test_dock_offers_the_bundled_terrain_model(iface, qtbot, monkeypatch, terrain_model, tmp_path: Path) -> None:
    """With no model file chosen, the user picks the bundled map-only or terrain-aware model."""
    import lcgan_qgis.plugin.gui.terrain_box as terrain_module
    from lcgan_qgis.plugin.gui.dock import LcganDock
    from lcgan_qgis.plugin.gui.terrain_box import BUNDLED_TERRAIN

    dock = LcganDock(iface)
    qtbot.addWidget(dock)
    dock.set_direction(Direction.LANDCOVER_TO_RGB)
    assert dock.chosen_model_path() is None
    missing = tmp_path / "not_installed" / "landcover_to_rgb_terrain.onnx"
    monkeypatch.setattr(terrain_module, "bundled_terrain_model_path", lambda: missing)
    dock.bundled_combo.setCurrentIndex(dock.bundled_combo.findData(BUNDLED_TERRAIN))
    assert dock.chosen_model_path() == str(missing)
    assert f"Model file not found: {missing}" in dock.info_box.toPlainText()
    monkeypatch.setattr(terrain_module, "bundled_terrain_model_path", lambda: terrain_model)
    dock.refresh_model_info()
    assert "Needed" in dock.elevation_hint.text()
    dock.model_widget.setFilePath(str(terrain_model))
    assert not dock.bundled_combo.isEnabled()
