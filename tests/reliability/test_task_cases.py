"""Reliability table of the dock panel and its ``QgsTask``: a run that cannot work ends with the specific message in
the QGIS message bar (critical), no layer added to the project, and the output folder exactly as it was. QGIS keeps
running: each case is a real task in the session's one QgsApplication.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lcgan_qgis.core.model.contract import Direction
from tests.fixtures.onnx_factory import default_contract, pointwise_model
from tests.fixtures.plugin import image_array, landcover_array, make_dock, write_raster

from . import odd_models
from .helpers import Case, assert_unchanged, snapshot

TASK_TIMEOUT_MS = 120_000
COARSE = (300000.0, 300.0, 0.0, 4150000.0, 0.0, -300.0)


def _unknown_codes(tmp: Path) -> Path:
    codes = landcover_array(40, 40)
    codes[0, :7] = 99
    return write_raster(tmp / "odd.tif", codes, nodata=255)


def _nested_model(tmp: Path) -> Path:
    contract = default_contract(Direction.LANDCOVER_TO_RGB)
    model = odd_models.with_metadata_text(pointwise_model(contract), odd_models.deeply_nested_metadata(contract))
    return odd_models.save(model, tmp / "nested.onnx")


# build(tmp, models) -> dict(direction, layer, model, output)
CASES = [
    Case("model file missing", lambda t, m: dict(
        direction=Direction.LANDCOVER_TO_RGB, layer=write_raster(t / "lc.tif", landcover_array(40, 40), nodata=255),
        model=t / "gone.onnx"), r"Model file not found: .*gone\.onnx"),
    Case("model of the other direction", lambda t, m: dict(
        direction=Direction.LANDCOVER_TO_RGB, layer=write_raster(t / "lc.tif", landcover_array(40, 40), nodata=255),
        model=m[Direction.RGB_TO_LANDCOVER]),
        r"translates rgb_to_landcover, not landcover_to_rgb; choose a landcover_to_rgb model"),
    Case("codes outside the scheme", lambda t, m: dict(
        direction=Direction.LANDCOVER_TO_RGB, layer=_unknown_codes(t), model=m[Direction.LANDCOVER_TO_RGB]),
        r"odd: 1 value\(s\) are not codes of the class scheme .*: 99 \(7 px\)"),
    Case("pixels 10x the model's GSD", lambda t, m: dict(
        direction=Direction.RGB_TO_LANDCOVER, layer=write_raster(t / "coarse.tif", image_array(40, 40), COARSE,
                                                                 nodata=0),
        model=m[Direction.RGB_TO_LANDCOVER]),
        r"Layer 'coarse' has 300 x 300 m pixels.*untick 'Resample to the model's resolution' in the dock"),
    Case("output folder not writable", lambda t, m: dict(
        direction=Direction.LANDCOVER_TO_RGB, layer=write_raster(t / "lc.tif", landcover_array(40, 40), nodata=255),
        model=m[Direction.LANDCOVER_TO_RGB], output=Path("/proc/lcgan_dock.tif")),
        r"(Cannot write|not writable).*/proc"),
    Case("output is the input", lambda t, m: dict(
        direction=Direction.LANDCOVER_TO_RGB, layer=(lc := write_raster(t / "lc.tif", landcover_array(40, 40),
                                                                        nodata=255)),
        model=m[Direction.LANDCOVER_TO_RGB], output=lc), r"The output .*lc\.tif is the input raster itself"),
    Case("model with deeply nested metadata", lambda t, m: dict(
        direction=Direction.LANDCOVER_TO_RGB, layer=write_raster(t / "lc.tif", landcover_array(40, 40), nodata=255),
        model=_nested_model(t)), r"nested\.onnx: metadata 'lcgan' is nested too deeply to be read"),
]


def _layer(path: Path, name: str) -> Any:
    from qgis.core import QgsProject, QgsRasterLayer

    layer = QgsRasterLayer(str(path), name)
    assert layer.isValid()
    QgsProject.instance().addMapLayer(layer)
    return layer


def short_text(text: str) -> str:
    from lcgan_qgis.plugin.gui.messages import short_text as first_sentence

    return first_sentence(text)


def _critical_messages(iface: Any) -> list[str]:
    from qgis.core import Qgis

    return [item.text() for item in iface.messageBar().items() if item.level() == Qgis.MessageLevel.Critical]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_task_reports(case: Case, iface: Any, qtbot: Any, models: dict[Direction, Path], tmp_path: Path) -> None:
    from qgis.core import QgsProject

    spec = case.build(tmp_path, models)
    output = Path(spec.get("output", tmp_path / "out.tif"))
    layer = _layer(spec["layer"], Path(spec["layer"]).stem)
    dock = make_dock(iface, spec["direction"], layer, spec["model"], output)
    qtbot.addWidget(dock)
    before, layers = snapshot(tmp_path), set(QgsProject.instance().mapLayers())
    task = dock.run()
    assert task is not None
    qtbot.waitUntil(lambda: dock.last_outcome is not None, timeout=TASK_TIMEOUT_MS)
    outcome = dock.last_outcome
    assert outcome.job is None and not outcome.canceled
    assert re.search(case.message, outcome.error), (case.message, outcome.error)
    assert short_text(outcome.error) in _critical_messages(iface)  # (the bar shows its first sentence, the rest
    # behind "Show more": lcgan_qgis/plugin/gui/messages.py)
    assert set(QgsProject.instance().mapLayers()) == layers
    assert QgsProject.instance().layerTreeRoot().findGroup("lcgan") is None
    assert_unchanged(tmp_path, before)
    assert dock.run_button.isEnabled() and dock.task is None  # ready for the next run
    if tmp_path not in output.parents:
        assert not output.exists()


def test_no_layer_chosen(iface: Any, qtbot: Any) -> None:
    from lcgan_qgis.plugin.gui.dock import LcganDock

    dock = LcganDock(iface)
    qtbot.addWidget(dock)
    assert dock.run() is None
    assert "Choose a raster layer to translate." in _critical_messages(iface)


def test_toolbox_run_on_the_output_of_a_running_dock_task_is_refused(iface: Any, qtbot: Any, lcgan: Any,
                                                                    models: dict[Direction, Path],
                                                                    tmp_path: Path) -> None:
    """The dock writes ``o.tif``; while its task runs, a Processing run (toolbox, model, script) asks for the same
    file. It is refused at once with a message naming the file, and the dock's result arrives whole."""
    from qgis.core import QgsProcessingException

    big = write_raster(tmp_path / "big.tif", landcover_array(3000, 3000), nodata=255)
    small = write_raster(tmp_path / "small.tif", landcover_array(40, 40), nodata=255)
    output = tmp_path / "o.tif"
    dock = make_dock(iface, Direction.LANDCOVER_TO_RGB, _layer(big, "big"), models[Direction.LANDCOVER_TO_RGB], output)
    qtbot.addWidget(dock)
    task = dock.run()
    assert task is not None
    qtbot.waitUntil(lambda: task.progress() > 0 or dock.last_outcome is not None, timeout=TASK_TIMEOUT_MS)
    assert dock.last_outcome is None, "the dock's task ended before the second run could start"
    with pytest.raises(QgsProcessingException, match=r"Another lcgan run in this QGIS session is writing "
                                                     r".*o\.tif right now; wait for it to finish or choose another "
                                                     r"output file"):
        lcgan.run("lcgan:landcover_to_rgb", {"INPUT": str(small), "MODEL": str(models[Direction.LANDCOVER_TO_RGB]),
                                             "OUTPUT": str(output)})
    qtbot.waitUntil(lambda: dock.last_outcome is not None, timeout=TASK_TIMEOUT_MS)
    assert dock.last_outcome.job is not None, dock.last_outcome.error
    from osgeo import gdal

    ds = gdal.Open(str(output))
    assert (ds.RasterXSize, ds.RasterYSize) == (3000, 3000)
    # the file is free again: the same toolbox run now works
    lcgan.run("lcgan:landcover_to_rgb", {"INPUT": str(small), "MODEL": str(models[Direction.LANDCOVER_TO_RGB]),
                                         "OUTPUT": str(output)})
    assert gdal.Open(str(output)).RasterXSize == 40


def test_dock_radiometry_choice_reaches_the_task(iface: Any, qtbot: Any, models: dict[Direction, Path],
                                                 tmp_path: Path) -> None:
    image = write_raster(tmp_path / "eight.tif", (np.random.default_rng(0).random((3, 40, 40)) * 250).astype(np.uint8))
    dock = make_dock(iface, Direction.RGB_TO_LANDCOVER, _layer(image, "eight"), models[Direction.RGB_TO_LANDCOVER],
                 tmp_path / "lc.tif")
    qtbot.addWidget(dock)
    assert dock.radiometry_combo.isVisibleTo(dock)
    dock.radiometry_combo.setCurrentIndex(dock.radiometry_combo.findData("percentile"))
    request, _reader = dock.build_request()
    assert request.settings.image.radiometry_mode == "percentile"
    dock.run()
    qtbot.waitUntil(lambda: dock.last_outcome is not None, timeout=TASK_TIMEOUT_MS)
    assert dock.last_outcome.job is not None, dock.last_outcome.error
    assert any(m.startswith("Radiometry: percentile (chosen;") for m in dock.last_outcome.messages)
    dock.set_direction(Direction.LANDCOVER_TO_RGB)
    assert not dock.radiometry_combo.isVisibleTo(dock)


def test_model_info_box_names_deeply_nested_metadata(qgis_app: Any, tmp_path: Path) -> None:
    """The dock's model box reads a model as soon as it is chosen: a hostile metadata JSON gets its message in red,
    not a RecursionError out of the widget."""
    from lcgan_qgis.plugin.gui.model_info import ModelInfoBox

    box = ModelInfoBox()
    assert box.show_model(str(_nested_model(tmp_path)), Direction.LANDCOVER_TO_RGB, "cpu") is None
    assert "metadata 'lcgan' is nested too deeply to be read" in box.toPlainText()
