"""Web tile layers (XYZ, WMS) and multi-band layers from the dock (issue 25, point 1): the band boxes list the real
bands and default to red, green, blue; the dock gives the same pixels as Processing with bands 1,2,3 on a local
``file://`` XYZ source; an unreachable service says so."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lcgan_qgis.core.model.contract import Direction
from tests.fixtures.plugin import add_layer, image_array, make_dock, read, write_raster

TASK_TIMEOUT_MS = 120_000
AREA = (322000, 4124000, 326000, 4128000)  # UTM 12N, inside the tile folder's coverage


def _canvas_on_area(iface) -> None:
    from qgis.core import QgsCoordinateReferenceSystem, QgsRectangle

    canvas = iface.mapCanvas()
    canvas.setDestinationCrs(QgsCoordinateReferenceSystem("EPSG:32612"))
    canvas.resize(400, 400)
    canvas.setExtent(QgsRectangle(*AREA))


def test_band_boxes_list_a_web_layers_red_green_blue(iface, qtbot, models, xyz_tiles, tmp_path: Path) -> None:
    from qgis.core import QgsProject, QgsRasterLayer

    layer = QgsRasterLayer(xyz_tiles, "basemap", "wms")
    QgsProject.instance().addMapLayer(layer)
    dock = make_dock(iface, Direction.RGB_TO_LANDCOVER, layer, models[Direction.RGB_TO_LANDCOVER], tmp_path / "o.tif")
    qtbot.addWidget(dock)
    combos = dock.band_combos
    assert [[c.itemText(i) for i in range(c.count())] for c in combos] == [["Red", "Green", "Blue"]] * 3
    assert [c.currentBand() for c in combos] == [1, 2, 3]


def test_band_boxes_of_rgba_and_bgr_files_default_to_red_green_blue(iface, qtbot, models, tmp_path: Path) -> None:
    from osgeo import gdal

    rgba = write_raster(tmp_path / "rgba.tif", np.concatenate([image_array(40, 40).astype(np.uint8),
                                                               np.full((1, 40, 40), 255, np.uint8)]))
    ds = gdal.Open(str(rgba), gdal.GA_Update)
    ds.GetRasterBand(4).SetColorInterpretation(gdal.GCI_AlphaBand)
    ds = None
    bgr = write_raster(tmp_path / "bgr.tif", image_array(40, 40))
    ds = gdal.Open(str(bgr), gdal.GA_Update)
    for band, colour in {1: gdal.GCI_BlueBand, 2: gdal.GCI_GreenBand, 3: gdal.GCI_RedBand}.items():
        ds.GetRasterBand(band).SetColorInterpretation(colour)
    ds = None
    rgba_layer, bgr_layer = add_layer(rgba, "rgba"), add_layer(bgr, "bgr")
    dock = make_dock(iface, Direction.RGB_TO_LANDCOVER, rgba_layer, models[Direction.RGB_TO_LANDCOVER],
                     tmp_path / "o.tif")
    qtbot.addWidget(dock)
    assert [c.count() for c in dock.band_combos] == [3, 3, 3]  # the alpha band is a mask, not a choice
    assert [c.currentBand() for c in dock.band_combos] == [1, 2, 3]
    dock.layer_combo.setLayer(bgr_layer)
    assert [c.currentBand() for c in dock.band_combos] == [3, 2, 1]  # read from the colour interpretation


def test_an_xyz_layer_gives_the_same_pixels_from_the_dock_and_from_processing(iface, qtbot, lcgan, models, xyz_tiles,
                                                                             tmp_path: Path) -> None:
    from qgis.core import QgsProject, QgsRasterLayer

    layer = QgsRasterLayer(xyz_tiles, "basemap", "wms")
    QgsProject.instance().addMapLayer(layer)
    model = models[Direction.RGB_TO_LANDCOVER]
    dock = make_dock(iface, Direction.RGB_TO_LANDCOVER, layer, model, tmp_path / "dock.tif")
    qtbot.addWidget(dock)
    dock.radiometry_combo.setCurrentIndex(dock.radiometry_combo.findData("percentile"))
    _canvas_on_area(iface)
    dock.run_button.click()
    qtbot.waitUntil(lambda: dock.last_outcome is not None, timeout=TASK_TIMEOUT_MS)
    assert dock.last_outcome.job is not None, dock.last_outcome.error
    extent = iface.mapCanvas().extent()
    lcgan.run("lcgan:rgb_to_landcover", {
        "INPUT": layer, "MODEL": str(model), "BANDS": "1,2,3", "RADIOMETRY": 1,  # percentile
        "EXTENT": f"{extent.xMinimum()},{extent.xMaximum()},{extent.yMinimum()},{extent.yMaximum()} [EPSG:32612]",
        "OUTPUT": str(tmp_path / "processing.tif")})
    from_dock, ds_dock = read(tmp_path / "dock.tif")
    from_processing, ds_processing = read(tmp_path / "processing.tif")
    assert ds_dock.GetGeoTransform() == ds_processing.GetGeoTransform()
    assert from_dock.shape == from_processing.shape and np.array_equal(from_dock, from_processing)
    assert len(np.unique(from_dock)) > 2  # (a real classification, not one colour)


def test_an_unreachable_web_service_says_so(iface, qtbot, models, tmp_path: Path) -> None:
    from qgis.core import Qgis, QgsProject, QgsRasterLayer
    from qgis.PyQt.QtWidgets import QToolButton

    missing = tmp_path / "offline"
    source = f"type=xyz&url=file://{missing}/{{z}}/{{x}}/{{y}}.png&zmin=11&zmax=13"
    layer = QgsRasterLayer(source, "offline basemap", "wms")
    assert layer.isValid()
    QgsProject.instance().addMapLayer(layer)
    dock = make_dock(iface, Direction.RGB_TO_LANDCOVER, layer, models[Direction.RGB_TO_LANDCOVER], tmp_path / "o.tif")
    qtbot.addWidget(dock)
    _canvas_on_area(iface)
    assert dock.run() is None
    item = iface.messageBar().currentItem()
    assert item is not None and item.level() == Qgis.MessageLevel.Critical
    assert item.text().startswith("Web layer 'offline basemap' returned no pixels over the area")
    assert item.findChildren(QToolButton)  # the whole message behind "Show more"
    from lcgan_qgis.core.errors import InputRasterError
    from lcgan_qgis.plugin.layers import reader_for

    with pytest.raises(InputRasterError, match=r"the service is unreachable \(no network, a proxy, or a wrong address"):
        reader_for(layer, dock._area_wkt(layer), None, Direction.RGB_TO_LANDCOVER)
    assert not list(tmp_path.glob("o*.tif"))


def test_long_errors_are_short_in_the_bar_with_the_whole_text_behind_show_more(iface) -> None:
    from qgis.core import Qgis
    from qgis.PyQt.QtWidgets import QToolButton

    from lcgan_qgis.plugin.gui import messages

    text = ("Layer 'srtm' looks like an elevation raster (3,812 distinct values from 1,102 to 2,648), not land cover "
            "(class codes): choose it as the Elevation (DEM) of the model with relief, and a land-cover map as the "
            "input, then run again")
    messages.push(iface.messageBar(), text, Qgis.MessageLevel.Critical)
    item = iface.messageBar().currentItem()
    assert len(item.text()) <= messages.SHORT_CHARS + 1 and item.text().endswith("…")
    assert item.text()[:-1] in text and item.duration() == 0  # an error stays until closed
    assert any(b.text() == "Show more" for b in item.findChildren(QToolButton))
    messages.push(iface.messageBar(), "Canceled: nothing was written.", Qgis.MessageLevel.Info)
    assert iface.messageBar().currentItem().text() == "Canceled: nothing was written."
