"""Backend and precision in the plugin: the Processing parameters and outputs, the dock's options, OpenVINO's
cache in the QGIS profile, and the optional OpenVINO offered by the dependency installer."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from lcgan_qgis.core.model.contract import Direction
from lcgan_qgis.core.model.precision import BACKENDS, PRECISIONS
from tests.fixtures.plugin import image_array, make_dock, recording_feedback, write_raster
from tests.optional import needs_openvino

RGB2LC = "lcgan:rgb_to_landcover"


@pytest.fixture()
def imagery(tmp_path: Path) -> Path:
    return write_raster(tmp_path / "img.tif", image_array(60, 70))


def test_processing_reports_the_path_that_ran(lcgan, models, imagery: Path, tmp_path: Path) -> None:
    feedback = recording_feedback()
    result = lcgan.run(RGB2LC, {"INPUT": str(imagery), "MODEL": str(models[Direction.RGB_TO_LANDCOVER]),
                                "OUTPUT": str(tmp_path / "lc.tif"), "DEVICE": 1,
                                "PRECISION": PRECISIONS.index("fp32"), "BACKEND": BACKENDS.index("onnxruntime")},
                       feedback=feedback)
    assert result["RAN_WITH"] == "onnxruntime fp32" and result["PROVIDER"] == "CPUExecutionProvider"
    assert any(line.startswith("Model rgb_to_landcover.onnx") and "onnxruntime" in line and "fp32" in line
               for line in feedback.lines)
    assert any("with onnxruntime fp32 on CPUExecutionProvider" in line for line in feedback.lines)


def test_processing_refuses_an_impossible_precision_with_the_reason(lcgan, models, imagery: Path,
                                                                    tmp_path: Path) -> None:
    from qgis.core import QgsProcessingException

    with pytest.raises(QgsProcessingException, match="bf16 runs only with OpenVINO"):
        lcgan.run(RGB2LC, {"INPUT": str(imagery), "MODEL": str(models[Direction.RGB_TO_LANDCOVER]),
                           "OUTPUT": str(tmp_path / "lc.tif"), "PRECISION": PRECISIONS.index("bf16"),
                           "BACKEND": BACKENDS.index("onnxruntime")})
    assert not (tmp_path / "lc.tif").exists()


@needs_openvino
def test_processing_runs_openvino_and_caches_in_the_qgis_profile(lcgan, models, imagery: Path,
                                                                 tmp_path: Path) -> None:
    from lcgan_qgis.plugin.settings import openvino_cache_dir

    feedback = recording_feedback()
    result = lcgan.run(RGB2LC, {"INPUT": str(imagery), "MODEL": str(models[Direction.RGB_TO_LANDCOVER]),
                                "OUTPUT": str(tmp_path / "lc.tif"), "PRECISION": PRECISIONS.index("fp32"),
                                "BACKEND": BACKENDS.index("openvino")}, feedback=feedback)
    assert result["RAN_WITH"] == "openvino fp32" and result["PROVIDER"] == "OpenVINO CPU"
    assert any("OpenVINO" in line and "fp32" in line for line in feedback.lines)
    from qgis.core import QgsApplication

    cache = Path(openvino_cache_dir())
    assert cache.parent == Path(QgsApplication.qgisSettingsDirPath()) / "lcgan"
    assert list(cache.glob("*.blob"))


def test_the_dock_passes_precision_backend_and_cache(iface, qtbot, models, imagery: Path, tmp_path: Path) -> None:
    from qgis.core import QgsProject, QgsRasterLayer

    from lcgan_qgis.plugin.settings import openvino_cache_dir

    layer = QgsRasterLayer(str(imagery), "img")
    QgsProject.instance().addMapLayer(layer)
    dock = make_dock(iface, Direction.RGB_TO_LANDCOVER, layer, models[Direction.RGB_TO_LANDCOVER],
                     tmp_path / "lc.tif")
    qtbot.addWidget(dock)
    assert [dock.precision_combo.itemData(i) for i in range(dock.precision_combo.count())] == list(PRECISIONS)
    assert [dock.backend_combo.itemData(i) for i in range(dock.backend_combo.count())] == list(BACKENDS)
    request, reader = dock.build_request()
    reader.close()
    execution = request.settings.execution
    assert (execution.precision, execution.backend, execution.cache_dir) == ("auto", "auto", openvino_cache_dir())
    dock.precision_combo.setCurrentIndex(PRECISIONS.index("int8"))
    dock.backend_combo.setCurrentIndex(BACKENDS.index("onnxruntime"))
    request, reader = dock.build_request()
    reader.close()
    assert (request.settings.execution.precision, request.settings.execution.backend) == ("int8", "onnxruntime")


@pytest.fixture()
def without_openvino(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from lcgan_qgis.core.model import openvino_backend

    openvino_backend.openvino_status.cache_clear()
    openvino_backend._core.cache_clear()
    monkeypatch.setitem(sys.modules, "openvino", None)
    yield
    openvino_backend.openvino_status.cache_clear()
    openvino_backend._core.cache_clear()


def test_a_missing_openvino_is_offered_with_its_size_and_pins(iface, qtbot, without_openvino: None) -> None:
    from lcgan_qgis.installer.folders import optional_requirements_path
    from lcgan_qgis.installer.plan import DOWNLOAD_MB, OPENVINO, install_plan, runtime_pins
    from lcgan_qgis.installer.status import check_openvino
    from lcgan_qgis.plugin.gui.deps_dialog import InstallDialog
    from lcgan_qgis.plugin.gui.dock import LcganDock

    status = check_openvino()
    pins = runtime_pins(optional_requirements_path())
    assert not status.ok and f"{DOWNLOAD_MB['openvino']:.0f} MB download" in status.problem
    assert status.missing == OPENVINO
    requirements = (f"openvino=={pins['openvino']}", f"openvino-telemetry=={pins['openvino-telemetry']}")
    assert install_plan(status.missing).requirements == requirements
    dock = LcganDock(iface)
    qtbot.addWidget(dock)
    dock.show()
    dock.options_box.setCollapsed(False)
    assert "OpenVINO (optional) is not available" in dock.openvino_label.text()
    assert not dock.openvino_button.isHidden()
    # the one installer: the same dialog as onnxruntime's, with OpenVINO's pins and sizes and no wheel choice
    dialog = InstallDialog(status, target=Path("/nonexistent/python_deps"))
    assert dialog.command[-2:] == list(requirements) and "--no-deps" in dialog.command
    assert not any("numpy" in part for part in dialog.command)
    assert not dialog.variant_buttons.buttons()
    assert "59 MB to download, about 180 MB on disk" in dialog.plan_label.text()
    assert dock.install_openvino().status == status


@needs_openvino
def test_an_installed_openvino_is_described(iface, qtbot) -> None:
    from lcgan_qgis.installer.status import check_openvino
    from lcgan_qgis.plugin.gui.dock import LcganDock

    status = check_openvino()
    assert status.ok and status.summary.startswith("OpenVINO ") and status.missing == ()
    dock = LcganDock(iface)
    qtbot.addWidget(dock)
    dock.show()
    dock.options_box.setCollapsed(False)
    assert dock.openvino_label.text() == status.summary and dock.openvino_button.isHidden()
