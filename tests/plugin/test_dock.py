"""The dock panel in a real QGIS session: Run starts a QgsTask, the styled result lands in the project; cancel
leaves no file and no layer; layers are filtered by direction; the info box describes the model; the plugin loads
and unloads."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lcgan_qgis.core.model.contract import Direction
from tests.fixtures.plugin import NLCD, add_layer, image_array, landcover_array, make_dock, write_raster

TASK_TIMEOUT_MS = 120_000


def test_run_button_translates_in_a_task_and_adds_the_styled_layer(iface, qtbot, zion_clips, models,
                                                                   tmp_path: Path) -> None:
    from qgis.core import QgsApplication, QgsPalettedRasterRenderer, QgsProject
    from qgis.PyQt.QtCore import Qt

    layer = add_layer(zion_clips["rgb"], "Zion Landsat")
    dock = make_dock(iface, Direction.RGB_TO_LANDCOVER, layer, models[Direction.RGB_TO_LANDCOVER], tmp_path / "lc.tif")
    qtbot.addWidget(dock)
    assert dock.layer_combo.currentLayer() is layer
    assert [c.currentBand() for c in dock.band_combos] == [1, 2, 3]
    qtbot.mouseClick(dock.run_button, Qt.LeftButton)
    assert dock.task is not None and not dock.run_button.isEnabled() and dock.cancel_button.isEnabled()
    qtbot.waitUntil(lambda: dock.last_outcome is not None, timeout=TASK_TIMEOUT_MS)
    assert QgsApplication.taskManager().countActiveTasks() == 0
    outcome = dock.last_outcome
    assert outcome.error == "" and not outcome.canceled and outcome.job is not None
    assert dock.run_button.isEnabled()
    assert not dock.progress_bar.isVisibleTo(dock) and dock.progress_bar.value() == dock.progress_bar.minimum() - 1

    group = QgsProject.instance().layerTreeRoot().findGroup("lcgan")
    assert group is not None
    names = [node.layer().name() for node in group.findLayers()]
    assert names == ["Zion Landsat -> land cover (rgb_to_landcover)"]  # (input, model)
    result = group.findLayers()[0].layer()
    assert Path(result.source()) == tmp_path / "lc.tif"
    renderer = result.renderer()
    assert isinstance(renderer, QgsPalettedRasterRenderer)
    labels = {c.value: c.label for c in renderer.classes()}
    present = set(outcome.job.class_counts)
    assert set(labels) == present and present <= set(NLCD.codes)  # only the classes present, by default
    assert all(labels[c.code] == f"{c.code} {c.name}" for c in NLCD.classes if c.code in present)
    legend = dict(renderer.legendSymbologyItems())
    assert all(legend[f"{c.code} {c.name}"].name() == c.hex for c in NLCD.classes if c.code in present)
    assert (tmp_path / "lc.qml").is_file() and (tmp_path / "lc.qmd").is_file()
    assert result.crs() == layer.crs() and result.extent() == layer.extent()
    assert (result.width(), result.height()) == (layer.width(), layer.height())
    assert any("land cover (rgb_to_landcover)' added" in item.text() for item in iface.messageBar().items())


def test_landcover_to_rgb_result_gets_a_0_255_rgb_renderer(iface, qtbot, models, tmp_path: Path) -> None:
    from qgis.core import QgsMultiBandColorRenderer, QgsProject

    layer = add_layer(write_raster(tmp_path / "lc.tif", landcover_array(100, 120), nodata=255), "map")
    dock = make_dock(iface, Direction.LANDCOVER_TO_RGB, layer, models[Direction.LANDCOVER_TO_RGB], tmp_path / "o.tif")
    qtbot.addWidget(dock)
    dock.run_button.click()
    qtbot.waitUntil(lambda: dock.last_outcome is not None, timeout=TASK_TIMEOUT_MS)
    assert dock.last_outcome.job is not None, dock.last_outcome.error
    result = QgsProject.instance().layerTreeRoot().findGroup("lcgan").findLayers()[0].layer()
    assert result.name() == "map -> RGB (landcover_to_rgb, seed 0)"  # (input, model, seed)
    renderer = result.renderer()
    assert isinstance(renderer, QgsMultiBandColorRenderer)
    assert (renderer.redBand(), renderer.greenBand(), renderer.blueBand()) == (1, 2, 3)
    red = renderer.redContrastEnhancement()
    assert (red.minimumValue(), red.maximumValue()) == (0, 255)


def test_cancel_stops_the_task_and_leaves_no_file_and_no_layer(iface, qtbot, models, tmp_path: Path) -> None:
    from qgis.core import QgsProject

    src = tmp_path / "in"
    src.mkdir()
    layer = add_layer(write_raster(src / "big.tif", landcover_array(3000, 3000), nodata=255), "big")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    dock = make_dock(iface, Direction.LANDCOVER_TO_RGB, layer, models[Direction.LANDCOVER_TO_RGB], out_dir / "o.tif")
    qtbot.addWidget(dock)
    layers_before = set(QgsProject.instance().mapLayers())
    task = dock.run()
    assert task is not None
    qtbot.waitUntil(lambda: task.progress() > 0 or dock.last_outcome is not None, timeout=TASK_TIMEOUT_MS)
    dock.cancel_button.click()
    qtbot.waitUntil(lambda: dock.last_outcome is not None, timeout=TASK_TIMEOUT_MS)
    assert dock.last_outcome.canceled, "the task finished before it could be cancelled"
    assert dock.last_outcome.job is None and dock.last_outcome.error == ""
    assert list(out_dir.iterdir()) == []
    assert set(QgsProject.instance().mapLayers()) == layers_before
    assert QgsProject.instance().layerTreeRoot().findGroup("lcgan") is None
    assert any("Canceled" in item.text() for item in iface.messageBar().items())


def test_layers_are_filtered_by_direction(iface, qtbot, tmp_path: Path) -> None:
    from lcgan_qgis.plugin.gui.dock import LcganDock

    single = add_layer(write_raster(tmp_path / "lc.tif", landcover_array(16, 16)), "codes")
    rgb = add_layer(write_raster(tmp_path / "rgb.tif", image_array(16, 16)), "rgb")
    dock = LcganDock(iface)
    qtbot.addWidget(dock)
    dock.set_direction(Direction.LANDCOVER_TO_RGB)
    assert dock.layer_combo.exceptedLayerList() == [rgb] and dock.layer_combo.currentLayer() is single
    assert not dock.bands_row.isVisibleTo(dock)
    assert dock.hidden_layers_note.isVisibleTo(dock)  # the hidden layer is named, with the reason
    assert dock.hidden_layers_note.text() == ("Not listed: 'rgb'. This direction needs one band of class codes; "
                                              "they fit 'RGB imagery → land cover'.")
    assert "Layer 'rgb' has 3 bands" in dock.hidden_layers_note.toolTip()
    dock.set_direction(Direction.RGB_TO_LANDCOVER)
    assert dock.layer_combo.exceptedLayerList() == [single] and dock.layer_combo.currentLayer() is rgb
    assert dock.bands_row.isVisibleTo(dock)
    assert "Not listed: 'codes'" in dock.hidden_layers_note.text()
    assert "'Land cover → synthetic RGB'" in dock.hidden_layers_note.text()


def test_info_box_describes_the_model_and_warns_about_the_direction(iface, qtbot, models) -> None:
    from lcgan_qgis.plugin.gui.dock import LcganDock

    dock = LcganDock(iface)
    qtbot.addWidget(dock)
    dock.set_direction(Direction.RGB_TO_LANDCOVER)
    dock.model_widget.setFilePath(str(models[Direction.RGB_TO_LANDCOVER]))
    text = dock.info_box.toPlainText()
    for expected in ("RGB imagery → land cover", "64 px, overlap 8 px", "30 m per pixel", "Classes: 14",
                     "42 Evergreen Forest", "Runs on: CPU"):
        assert expected in " ".join(text.split()), (expected, text)
    assert "#1c5f2c" in dock.info_box.toHtml()  # the swatch
    runs_on = next(line for line in text.splitlines() if line.startswith("Runs on:"))
    assert not re.search(r"\([^)]*\(", runs_on), runs_on  # no nested parentheses
    assert dock.info_box.classes_box.isCollapsed()  # the class list is folded away until asked for
    dock.model_widget.setFilePath(str(models[Direction.LANDCOVER_TO_RGB]))
    assert "choose a RGB imagery → land cover model" in dock.info_box.toPlainText()
    dock.model_widget.setFilePath("/nonexistent/model.onnx")
    assert "Model file not found: /nonexistent/model.onnx" in dock.info_box.toPlainText()


def test_area_from_canvas_and_from_polygon_features(iface, qtbot, tmp_path: Path) -> None:
    from qgis.core import QgsFeature, QgsGeometry, QgsProject, QgsRectangle, QgsVectorLayer

    from lcgan_qgis.core.errors import InputRasterError
    from lcgan_qgis.plugin.gui.dock import EXTENT_CANVAS, EXTENT_FEATURES, LcganDock

    layer = add_layer(write_raster(tmp_path / "lc.tif", landcover_array(100, 100)), "codes")  # 300000..303000
    dock = LcganDock(iface)
    qtbot.addWidget(dock)
    dock.layer_combo.setLayer(layer)
    iface.mapCanvas().setDestinationCrs(layer.crs())
    iface.mapCanvas().setExtent(QgsRectangle(300300, 4147300, 301200, 4148800))
    dock.extent_combo.setCurrentIndex(dock.extent_combo.findData(EXTENT_CANVAS))
    request, _reader = dock.build_request()
    area = QgsGeometry.fromWkt(request.settings.aoi_wkt)
    assert area.boundingBox().contains(QgsRectangle(300300, 4147300, 301200, 4148800))
    assert area.boundingBox().width() < 3000

    polygons = QgsVectorLayer("Polygon?crs=EPSG:4326", "fields", "memory")
    feature = QgsFeature()
    feature.setGeometry(QgsGeometry.fromWkt("POLYGON((0 0, 1 0, 1 1, 0 1, 0 0))"))  # far away
    polygons.dataProvider().addFeatures([feature])
    QgsProject.instance().addMapLayer(polygons)
    dock.extent_combo.setCurrentIndex(dock.extent_combo.findData(EXTENT_FEATURES))
    dock.polygon_combo.setLayer(polygons)
    with pytest.raises(InputRasterError, match="polygon layer 'fields' does not overlap layer 'codes'"):
        dock.build_request()


def test_plugin_loads_into_the_interface_and_unloads(iface, qtbot) -> None:
    from qgis.core import QgsApplication
    from qgis.PyQt.QtWidgets import QToolBar

    from lcgan_qgis import classFactory

    registry = QgsApplication.processingRegistry()
    had_provider = registry.providerById("lcgan") is not None
    plugin = classFactory(iface)
    plugin.initGui()
    assert registry.providerById("lcgan") is not None
    assert registry.algorithmById("lcgan:landcover_to_rgb") is not None
    assert registry.algorithmById("lcgan:rgb_to_landcover") is not None
    assert plugin.dock is not None and plugin.action in plugin.toolbar.actions()  # its own toolbar, shown
    assert plugin.toolbar.objectName() == "LcganToolBar" and plugin.toolbar is not iface.toolbar  # (not Raster's)
    plugin.action.setChecked(True)
    assert plugin.dock.isVisibleTo(iface.mainWindow()) or plugin.dock.isUserVisible()
    plugin.unload()
    assert plugin.dock is None and plugin.action is None
    assert (registry.providerById("lcgan") is not None) == had_provider
    assert plugin.toolbar is None and not iface.window.findChildren(QToolBar, "LcganToolBar")


def test_removing_the_input_layer_mid_run_does_not_break_the_task(iface, qtbot, models, tmp_path: Path) -> None:
    from qgis.core import QgsProject

    layer = add_layer(write_raster(tmp_path / "lc.tif", landcover_array(1500, 1500), nodata=255), "gone")
    dock = make_dock(iface, Direction.LANDCOVER_TO_RGB, layer, models[Direction.LANDCOVER_TO_RGB], tmp_path / "o.tif")
    qtbot.addWidget(dock)
    task = dock.run()
    assert task is not None
    QgsProject.instance().removeMapLayer(layer.id())
    qtbot.waitUntil(lambda: dock.last_outcome is not None, timeout=TASK_TIMEOUT_MS)
    assert dock.last_outcome.job is not None, dock.last_outcome.error
    rgb = QgsProject.instance().layerTreeRoot().findGroup("lcgan").findLayers()[0].layer()
    assert rgb.name() == "gone -> RGB (landcover_to_rgb, seed 0)" and rgb.width() == 1500


def test_a_second_run_while_one_is_running_is_refused(iface, qtbot, models, tmp_path: Path) -> None:
    layer = add_layer(write_raster(tmp_path / "lc.tif", landcover_array(1500, 1500), nodata=255), "busy")
    dock = make_dock(iface, Direction.LANDCOVER_TO_RGB, layer, models[Direction.LANDCOVER_TO_RGB], tmp_path / "o.tif")
    qtbot.addWidget(dock)
    assert dock.run() is not None
    assert dock.run() is None
    assert any("already running" in item.text() for item in iface.messageBar().items())
    qtbot.waitUntil(lambda: dock.last_outcome is not None, timeout=TASK_TIMEOUT_MS)
    assert dock.last_outcome.job is not None


NEW_DOCK_WIDTH_PX = 300  # about what QGIS gives a new panel in the right dock area of a 1366 px wide window


def test_the_panel_fits_the_width_of_a_new_dock(iface, qtbot, models, tmp_path: Path) -> None:
    """Nothing is clipped at a new dock's width: every visible widget lies inside the panel, in both directions,
    with the options, the class list, Adapt and Scenario unfolded."""
    from qgis.PyQt.QtCore import QCoreApplication, QPoint, Qt
    from qgis.PyQt.QtWidgets import QWidget

    from lcgan_qgis.plugin.gui.dock import LcganDock

    add_layer(write_raster(tmp_path / "lc.tif", landcover_array(16, 16)), "a land-cover layer with a long name")
    add_layer(write_raster(tmp_path / "rgb.tif", image_array(16, 16)), "an image layer with a long name")
    dock = LcganDock(iface)
    iface.window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
    iface.window.resize(1366, 900)
    iface.window.show()
    iface.window.resizeDocks([dock], [NEW_DOCK_WIDTH_PX], Qt.Orientation.Horizontal)
    for box in (dock.options_box, dock.adapt_panel, dock.scenario_panel):
        box.setCollapsed(False)
    for direction in Direction:
        dock.set_direction(direction)
        dock.model_widget.setFilePath(str(models[direction]))
        dock.info_box.classes_box.setCollapsed(False)
        dock.polygons_check.setChecked(True)
        for _ in range(3):
            QCoreApplication.processEvents()
        assert dock.width() <= NEW_DOCK_WIDTH_PX + 10, dock.width()
        viewport = dock.widget().viewport().width()
        assert dock.body.minimumSizeHint().width() <= viewport, (direction, dock.body.minimumSizeHint(), viewport)
        clipped = [
            (type(w).__name__, w.objectName() or getattr(w, "text", lambda: "")())
            for w in dock.body.findChildren(QWidget)
            if w.isVisibleTo(dock.body) and w.mapTo(dock.body, QPoint(w.width(), 0)).x() > dock.body.width()
        ]
        assert clipped == [], (direction, clipped)
    grab = tmp_path / "dock.png"
    assert dock.grab().save(str(grab)) and grab.stat().st_size > 1000


def test_a_web_tile_layer_runs_over_the_visible_extent_from_the_dock(iface, qtbot, models, xyz_tiles,
                                                                     tmp_path: Path) -> None:
    from qgis.core import QgsCoordinateReferenceSystem, QgsProject, QgsRasterLayer, QgsRectangle

    from lcgan_qgis.plugin.gui.dock import EXTENT_CANVAS

    layer = QgsRasterLayer(xyz_tiles, "basemap", "wms")
    QgsProject.instance().addMapLayer(layer)
    dock = make_dock(iface, Direction.RGB_TO_LANDCOVER, layer, models[Direction.RGB_TO_LANDCOVER], tmp_path / "lc.tif")
    qtbot.addWidget(dock)
    assert dock.extent_combo.currentData() == EXTENT_CANVAS  # a web layer has no "whole layer": visible extent
    dock.radiometry_combo.setCurrentIndex(dock.radiometry_combo.findData("percentile"))
    dock.polygons_check.setChecked(True)
    canvas = iface.mapCanvas()
    canvas.setDestinationCrs(QgsCoordinateReferenceSystem("EPSG:32612"))
    canvas.resize(400, 400)
    canvas.setExtent(QgsRectangle(322000, 4124000, 326000, 4128000))
    dock.run_button.click()
    qtbot.waitUntil(lambda: dock.last_outcome is not None, timeout=TASK_TIMEOUT_MS)
    assert dock.last_outcome.job is not None, dock.last_outcome.error
    names = [node.layer().name() for node in QgsProject.instance().layerTreeRoot().findGroup("lcgan").findLayers()]
    assert names == ["basemap -> polygons", "basemap -> land cover (rgb_to_landcover)"]
    assert dock.last_outcome.job.vector_count > 0 and (tmp_path / "lc_polygons.gpkg").is_file()
    assert any("is a web tile service: reading the chosen area" in note for note in dock._notes)


def test_sections_show_no_empty_fields_before_a_run(iface, qtbot, monkeypatch: pytest.MonkeyPatch) -> None:
    """What a new user sees when unfolding Adapt and Scenario: no empty progress bar before a run, and the class
    list of the scenario filled even when the model could not be read as QGIS started (no onnxruntime yet)."""
    from lcgan_qgis.plugin.gui import scenario_panel
    from lcgan_qgis.plugin.gui.dock import LcganDock

    classes = scenario_panel._classes
    monkeypatch.setattr(scenario_panel, "_classes", lambda: [])  # (as before onnxruntime is installed)
    dock = LcganDock(iface)
    qtbot.addWidget(dock)
    dock.show()  # (a folded section tells it was unfolded only while shown, as in QGIS)
    panel = dock.scenario_panel
    assert panel.class_combo.count() == 0
    monkeypatch.setattr(scenario_panel, "_classes", classes)  # (installed)
    panel.setCollapsed(False)
    assert panel.class_combo.count() > 0 and panel.class_combo.findData(22) >= 0
    dock.adapt_panel.setCollapsed(False)  # (unfolded by a click: each section once)
    for section in (dock.adapt_panel, panel):
        assert not section.progress_bar.isVisibleTo(section)
        section.progress_bar.setValue(0)  # (a run's first progress)
        assert section.progress_bar.isVisibleTo(section)
