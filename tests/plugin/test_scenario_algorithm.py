"""``lcgan:render_scenario`` through a real QgsApplication and ``processing.run`` / ``runAndLoadResults`` on small
rasters with the bundled model: the same pixels as the core, drawn polygons from a memory layer, the group of
before / after / change mask with provenance, and a clear error."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from lcgan_qgis.core.model.contract import Direction
from lcgan_qgis.core.resources import bundled_model_path
from lcgan_qgis.core.run.settings import Execution
from tests.fixtures.plugin import add_layer, landcover_array, read, write_raster

SCENARIO = "lcgan:render_scenario"
GT = (300000.0, 30.0, 0.0, 4150000.0, 0.0, -30.0)


@pytest.fixture
def maps(tmp_path: Path) -> dict[str, Path]:
    if not bundled_model_path(Direction.LANDCOVER_TO_RGB).is_file():
        pytest.skip("the bundled land cover -> RGB model is not installed")
    lc = landcover_array(200, 240, seed=4, nodata_corner=False)
    changed = lc.copy()
    changed[80:110, 150:190] = 22
    return {"base": write_raster(tmp_path / "base.tif", lc, nodata=255),
            "changed": write_raster(tmp_path / "changed.tif", changed, nodata=255)}


def _core(maps: dict[str, Path], out: Path, execution: object = None, **fields: object) -> np.ndarray:
    from lcgan_qgis.core.run.scenario import ScenarioRequest, run_scenario
    from lcgan_qgis.core.run.settings import Execution, Rendering, RunSettings

    settings = RunSettings(execution=execution or Execution(device="cpu"), rendering=Rendering(seed=3))
    run_scenario(ScenarioRequest(str(out), str(maps["base"]), settings=settings, **fields))  # type: ignore[arg-type]
    return read(out)[0]


def test_processing_renders_the_scenario_as_the_core_does(lcgan, maps: dict[str, Path], tmp_path: Path) -> None:
    out, mask = tmp_path / "after.tif", tmp_path / "mask.tif"
    result = lcgan.run(SCENARIO, {"BASE": str(maps["base"]), "CHANGED": str(maps["changed"]), "SEED": 3,
                                  "DEVICE": 1, "OUTPUT": str(out), "CHANGE_MASK": str(mask)})
    assert result["OUTPUT"] == str(out) and result["CHANGE_MASK"] == str(mask)
    assert result["MARGIN_PX"] == 32 and result["CHANGED_PX"] > 0  # the local mode's default margin
    assert result["CHANGED_HA"] == pytest.approx(result["CHANGED_PX"] * 0.09)
    assert Path(result["BASE_RENDER_OUTPUT"]).is_file()  # none given: rendered once, written beside
    np.testing.assert_array_equal(read(out)[0], _core(maps, tmp_path / "core.tif", changed_path=str(maps["changed"])))
    codes = read(mask)[0]
    assert set(np.unique(codes).tolist()) == {0, 1, 2}


def test_processing_mode_and_margin(lcgan, maps: dict[str, Path], tmp_path: Path) -> None:
    from lcgan_qgis.core.run.receptive_field import MAX_MARGIN_PX
    from lcgan_qgis.plugin.processing_provider import scenario_algorithm

    assert scenario_algorithm.MAX_MARGIN_PX == MAX_MARGIN_PX
    common = {"BASE": str(maps["base"]), "CHANGED": str(maps["changed"]), "SEED": 3, "DEVICE": 1}
    exact = lcgan.run(SCENARIO, {**common, "MODE": 1, "OUTPUT": str(tmp_path / "exact.tif"),
                                 "CHANGE_MASK": str(tmp_path / "exact_mask.tif")})
    assert exact["MARGIN_PX"] == 88
    np.testing.assert_array_equal(read(tmp_path / "exact.tif")[0], _core(
        maps, tmp_path / "core_exact.tif", changed_path=str(maps["changed"]), mode="exact"))
    local = lcgan.run(SCENARIO, {**common, "MODE": 0, "MARGIN": 24, "BASE_RENDER": exact["BASE_RENDER_OUTPUT"],
                                 "OUTPUT": str(tmp_path / "local.tif"), "CHANGE_MASK": str(tmp_path / "mask.tif")})
    assert local["MARGIN_PX"] == 24
    mask, base = read(tmp_path / "mask.tif")[0], read(Path(exact["BASE_RENDER_OUTPUT"]))[0]
    assert (mask == 2).any() and (mask == 0).sum() > 0.5 * mask.size
    pixels, dataset = read(tmp_path / "local.tif")
    np.testing.assert_array_equal(pixels[:, mask == 0], base[:, mask == 0])
    assert dataset.GetMetadata()["LCGAN_SCENARIO_MODE"] == "local"
    assert dataset.GetMetadata()["LCGAN_SCENARIO_MARGIN_PX"] == "24"


def test_drawn_polygons_and_the_before_after_group(lcgan, maps: dict[str, Path], tmp_path: Path) -> None:
    from qgis.core import QgsFeature, QgsGeometry, QgsProject, QgsVectorLayer

    layer = QgsVectorLayer("Polygon?crs=EPSG:32612&field=code:integer", "drawn", "memory")
    feature = QgsFeature(layer.fields())
    x0, y0 = GT[0] + 150 * 30, GT[3] - 80 * 30
    feature.setGeometry(QgsGeometry.fromWkt(f"POLYGON(({x0} {y0},{x0 + 1200} {y0},{x0 + 1200} {y0 - 900},"
                                            f"{x0} {y0 - 900},{x0} {y0}))"))
    feature.setAttributes([22])
    layer.dataProvider().addFeatures([feature])
    QgsProject.instance().addMapLayer(layer)
    out = tmp_path / "after.tif"
    lcgan.runAndLoadResults(SCENARIO, {"BASE": str(maps["base"]), "POLYGONS": layer, "CLASS_FIELD": "code",
                                       "SEED": 3, "DEVICE": 1, "NAME": "suburb", "OUTPUT": str(out),
                                       "CHANGE_MASK": str(tmp_path / "mask.tif")})
    root = QgsProject.instance().layerTreeRoot()
    group = root.findGroup("lcgan").findGroup("Scenario: suburb")
    names = [node.layer().name() for node in group.findLayers()]
    assert names == ["suburb: change", "suburb: after", "suburb: before"]
    after = group.findLayers()[1].layer()
    assert after.source() == str(out) and after.renderer().type() == "multibandcolor"
    assert "LCGAN_SCENARIO=suburb" in after.metadata().history()
    assert (tmp_path / "after.qmd").is_file() and "LCGAN_SCENARIO_CHANGE" in (tmp_path / "after.qmd").read_text()
    # the polygons burnt the base exactly as the core does with the same polygons (written here to a file)
    np.testing.assert_array_equal(read(out)[0], _core(maps, tmp_path / "core.tif", changed_path=str(
        write_raster(tmp_path / "burnt.tif", _burnt(maps), nodata=255))))
    QgsProject.instance().removeAllMapLayers()


def _burnt(maps: dict[str, Path]) -> np.ndarray:
    lc = read(maps["base"])[0].copy()
    lc[80:110, 150:190] = 22
    return lc


def test_a_class_the_model_never_saw_is_one_clear_line(lcgan, maps: dict[str, Path], tmp_path: Path) -> None:
    from qgis.core import QgsProcessingException

    with pytest.raises(QgsProcessingException, match="not a class the model knows") as caught:
        lcgan.run(SCENARIO, {"BASE": str(maps["base"]), "POLYGONS": str(_far_polygons(tmp_path)), "TO_CLASS": 99,
                             "DEVICE": 1, "OUTPUT": str(tmp_path / "x.tif"), "CHANGE_MASK": str(tmp_path / "m.tif")})
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "x.tif").exists()


def _far_polygons(folder: Path) -> Path:
    path = folder / "p.geojson"
    x0, y0 = GT[0] + 300, GT[3] - 300
    path.write_text('{"type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": '
                    '"urn:ogc:def:crs:EPSG::32612"}}, "features": [{"type": "Feature", "properties": {}, "geometry": '
                    f'{{"type": "Polygon", "coordinates": [[[{x0}, {y0}], [{x0 + 300}, {y0}], [{x0 + 300}, '
                    f'{y0 - 300}], [{x0}, {y0 - 300}], [{x0}, {y0}]]]}}}}]}}')
    return path


def test_the_dock_renders_a_drawn_scenario_into_its_group(iface, qtbot, maps: dict[str, Path],
                                                          tmp_path: Path) -> None:
    from qgis.core import QgsFeature, QgsGeometry, QgsProject, QgsVectorLayer
    from qgis.PyQt.QtCore import Qt

    from lcgan_qgis.plugin.gui.dock import LcganDock

    base = add_layer(maps["base"], "base land cover")
    drawn = QgsVectorLayer("Polygon?crs=EPSG:32612", "new suburb", "memory")
    feature = QgsFeature(drawn.fields())
    x0, y0 = GT[0] + 150 * 30, GT[3] - 80 * 30
    feature.setGeometry(QgsGeometry.fromRect(QgsGeometry.fromWkt(
        f"POLYGON(({x0} {y0},{x0 + 1200} {y0},{x0 + 1200} {y0 - 900},{x0} {y0 - 900},{x0} {y0}))").boundingBox()))
    drawn.dataProvider().addFeatures([feature])
    QgsProject.instance().addMapLayer(drawn)
    dock = LcganDock(iface)
    qtbot.addWidget(dock)
    panel = dock.scenario_panel
    panel.base_combo.setLayer(base)
    panel.polygons_combo.setLayer(drawn)
    panel.class_combo.setCurrentIndex(panel.class_combo.findData(22))
    panel.seed_spin.setValue(3)
    panel.name_edit.setText("new suburb")
    panel.output_widget.setFilePath(str(tmp_path / "after.tif"))
    assert (panel.build_request().mode, panel.build_request().margin_px) == ("local", 32)  # the default
    panel.mode_combo.setCurrentIndex(panel.mode_combo.findData("exact"))
    assert not panel.margin_spin.isEnabled() and panel.build_request().margin_px is None
    panel.mode_combo.setCurrentIndex(panel.mode_combo.findData("local"))
    panel.margin_spin.setValue(32)
    assert panel.margin_spin.isEnabled() and panel.build_request().margin_px == 32
    qtbot.mouseClick(panel.run_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: panel.task is None, timeout=120_000)
    assert "Scenario: new suburb" in panel.status_label.text(), panel.status_label.text()
    group = QgsProject.instance().layerTreeRoot().findGroup("lcgan").findGroup("Scenario: new suburb")
    assert [n.layer().name() for n in group.findLayers()] == ["new suburb: change", "new suburb: after",
                                                              "new suburb: before"]
    assert (tmp_path / "after_base.tif").is_file()  # no base render chosen: rendered once beside the output
    expected = _core(maps, tmp_path / "core.tif", changed_path=str(
        write_raster(tmp_path / "burnt.tif", _burnt(maps), nodata=255)), margin_px=32)
    np.testing.assert_array_equal(read(tmp_path / "after.tif")[0], expected)
    QgsProject.instance().removeAllMapLayers()


def test_the_docks_scenario_is_saved_in_the_output_folder_by_default(iface, qtbot, maps: dict[str, Path],
                                                                     tmp_path: Path) -> None:
    """No file chosen: the scenario goes into the dock's output folder (a result that survives a restart), named
    after the scenario, never into a temporary folder and never over an earlier result."""
    from qgis.core import QgsProject

    from lcgan_qgis.plugin.gui.dock import LcganDock

    dock = LcganDock(iface)
    qtbot.addWidget(dock)
    dock.output_box.folder_widget.setFilePath(str(tmp_path / "results"))
    panel = dock.scenario_panel
    assert panel.output_widget.lineEdit().placeholderText() == "automatic name in the output folder"
    panel.base_combo.setLayer(add_layer(maps["base"], "base land cover"))
    panel.changed_combo.setLayer(add_layer(maps["changed"], "changed land cover"))
    panel.name_edit.setText("new suburb")
    first = Path(panel.build_request().output_path)
    assert first == tmp_path / "results" / "new_suburb_after.tif"
    first.write_bytes(b"an earlier result")
    assert Path(panel.build_request().output_path) == tmp_path / "results" / "new_suburb_after_2.tif"
    QgsProject.instance().removeAllMapLayers()


@pytest.mark.skipif(shutil.which("qgis_process.bin") is None, reason="qgis_process.bin is not installed")
def test_qgis_process_runs_the_scenario_from_the_installed_zip(maps: dict[str, Path], tmp_path: Path) -> None:
    from tools.plugin_profile import install_plugin, qgis_env

    profile = tmp_path / "config"
    install_plugin(profile)
    env = {**qgis_env(profile), "QT_QPA_PLATFORM": "offscreen"}

    def qgis_process(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(shutil.which("qgis_process.bin")), *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300)

    assert qgis_process("plugins", "enable", "lcgan_qgis").returncode == 0
    out = tmp_path / "after.tif"
    run = qgis_process("run", SCENARIO, "--", f"BASE={maps['base']}", f"CHANGED={maps['changed']}", "SEED=3",
                       "DEVICE=1", "PRECISION=1", "BACKEND=1", "MODE=0", "MARGIN=24", f"OUTPUT={out}",
                       f"CHANGE_MASK={tmp_path / 'mask.tif'}")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "MARGIN_PX:\t24" in run.stdout
    expected = _core(maps, tmp_path / "core.tif", changed_path=str(maps["changed"]), margin_px=24,
                     execution=Execution(device="cpu", precision="fp32", backend="onnxruntime"))
    np.testing.assert_array_equal(read(out)[0], expected)  # fp32 onnxruntime: the same pixels in both processes


def test_a_base_map_gdal_cannot_read_is_one_line_naming_it(lcgan, maps: dict[str, Path], tmp_path: Path) -> None:
    """The base map read as every algorithm reads a layer's file: QGIS's virtual raster calculator over the real map is
    a valid layer but no GDAL file; one line names it and nothing is written."""
    from qgis.core import QgsProcessingException, QgsProject, QgsRasterLayer

    uri = (f"?crs=EPSG:32612&extent=300000,4144000,307200,4150000&width=240&height=200&formula=%22b@1%22"
           f"&b:uri={maps['base']}&b:provider=gdal")
    layer = QgsRasterLayer(uri, "computed land cover", "virtualraster")
    assert layer.isValid() and layer.providerType() == "virtualraster"
    QgsProject.instance().addMapLayer(layer)
    try:
        with pytest.raises(QgsProcessingException, match="Land-cover layer 'computed land cover' is not a file GDAL "
                                                         "can read") as caught:
            lcgan.run(SCENARIO, {"BASE": layer.id(), "CHANGED": str(maps["changed"]), "DEVICE": 1,
                                 "OUTPUT": str(tmp_path / "x.tif"), "CHANGE_MASK": str(tmp_path / "m.tif")})
        assert "\n" not in str(caught.value)
        assert not (tmp_path / "x.tif").exists() and not (tmp_path / "m.tif").exists()
    finally:
        QgsProject.instance().removeMapLayer(layer.id())
