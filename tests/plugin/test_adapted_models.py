"""Adapted models (issue 26): a model that fine-tuning wrote to ``<lcgan home>/models/<name>/`` is listed in the
dock and in every Processing MODEL choice, named for an analyst, with the direction its contract states, and runs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lcgan_qgis.core.model.contract import Direction
from tests.fixtures.onnx_factory import write_pointwise
from tests.fixtures.plugin import image_array, landcover_array, read, write_raster

LC2RGB, RGB2LC = Direction.LANDCOVER_TO_RGB, Direction.RGB_TO_LANDCOVER


def write_adapted(folder: Path) -> Path:
    """A model folder laid out like resources/models: both generators, an int8 copy and a report."""
    folder.mkdir(parents=True)
    for direction in Direction:
        write_pointwise(folder / f"{direction.value}.onnx", direction)
    shutil.copy(folder / "landcover_to_rgb.onnx", folder / "landcover_to_rgb.int8.onnx")
    (folder / "report.json").write_text("{}")
    return folder


@pytest.fixture
def models_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The user-models folder of a temporary QGIS profile, holding ``my_region``, a folder whose file is named for
    one direction but whose contract states the other, and a file that is no model."""
    home = tmp_path / "profile" / "lcgan"
    monkeypatch.setenv("LCGAN_HOME", str(home))
    write_adapted(home / "models" / "my_region")
    (home / "models" / "misnamed").mkdir()
    write_pointwise(home / "models" / "misnamed" / "landcover_to_rgb.onnx", RGB2LC)
    (home / "models" / "broken").mkdir()
    (home / "models" / "broken" / "rgb_to_landcover.onnx").write_bytes(b"not a model")
    return home / "models"


def test_adapted_models_are_listed_by_name_with_the_direction_of_their_contract(models_dir: Path) -> None:
    from lcgan_qgis.plugin.models import adapted_models, model_from_value, model_short_name

    listed = {(m.label, m.direction, m.path) for m in adapted_models()}
    assert listed == {
        ("my_region (adapted)", LC2RGB, models_dir / "my_region" / "landcover_to_rgb.onnx"),
        ("my_region (adapted)", RGB2LC, models_dir / "my_region" / "rgb_to_landcover.onnx"),
        ("misnamed (adapted)", RGB2LC, models_dir / "misnamed" / "landcover_to_rgb.onnx"),
    }  # (no int8 copy, no broken file)
    assert [m.path.parent.name for m in adapted_models(LC2RGB)] == ["my_region"]
    assert model_from_value("my_region:rgb_to_landcover") == str(models_dir / "my_region" / "rgb_to_landcover.onnx")
    assert model_short_name(str(models_dir / "my_region" / "landcover_to_rgb.onnx"), LC2RGB) == "my_region"


def test_the_dock_lists_adapted_models_and_a_new_one_is_selectable_at_once(models_dir: Path, iface, qtbot) -> None:
    from lcgan_qgis.plugin.gui.dock import LcganDock

    dock = LcganDock(iface)
    qtbot.addWidget(dock)
    for direction, expected in ((LC2RGB, ["bundled", "my_region (adapted)"]),
                                (RGB2LC, ["bundled", "misnamed (adapted)", "my_region (adapted)"])):
        dock.set_direction(direction)
        assert [dock.model_combo.itemText(i) for i in range(dock.model_combo.count())] == expected
    dock.model_combo.setCurrentIndex(dock.model_combo.findText("my_region (adapted)"))
    assert dock.chosen_model_path() == str(models_dir / "my_region" / "rgb_to_landcover.onnx")
    assert "my_region (adapted)" in dock.info_box.summary.text()

    write_adapted(models_dir / "new_area")  # what the Adapt section's finished run leaves, then announces
    dock.adapt_panel.model_added.emit(str(models_dir / "new_area"))
    assert dock.model_combo.currentText() == "new_area (adapted)"
    assert dock.chosen_model_path() == str(models_dir / "new_area" / "rgb_to_landcover.onnx")
    assert "new_area (adapted)" in dock.info_box.summary.text()  # (the summary follows a choice made for the user)
    write_adapted(models_dir / "from_processing")  # (what lcgan:finetune leaves, with no signal to the dock)
    dock.model_combo.showPopup()
    assert dock.model_combo.findText("from_processing (adapted)") >= 0
    assert dock.model_combo.currentText() == "new_area (adapted)"  # (the choice is kept)
    dock.model_combo.hidePopup()
    dock.model_widget.setFilePath(str(models_dir / "misnamed" / "landcover_to_rgb.onnx"))  # a file comes first
    assert dock.chosen_model_path() == str(models_dir / "misnamed" / "landcover_to_rgb.onnx")


def test_processing_offers_adapted_models_and_runs_them_by_path_and_by_keyword(models_dir: Path, lcgan,
                                                                              tmp_path: Path) -> None:
    from qgis.core import QgsApplication, QgsProcessingException

    from lcgan_qgis.plugin.processing_provider.model_widget import ModelWidgetWrapper

    for algorithm_id, direction in (("lcgan:landcover_to_rgb", LC2RGB), ("lcgan:rgb_to_landcover", RGB2LC)):
        algorithm = QgsApplication.processingRegistry().createAlgorithmById(algorithm_id)
        wrapper = ModelWidgetWrapper(algorithm.parameterDefinition("MODEL"), None)  # (what the dialog shows)
        items = [wrapper.combo.itemText(i) for i in range(wrapper.combo.count())]
        assert "my_region (adapted)" in items, (algorithm_id, items)
        wrapper.combo.setCurrentIndex(items.index("my_region (adapted)"))
        assert wrapper.value() == str(models_dir / "my_region" / f"{direction.value}.onnx")
    landcover = write_raster(tmp_path / "lc.tif", landcover_array(32, 32))
    imagery = write_raster(tmp_path / "rgb.tif", image_array(32, 32))
    lcgan.run("lcgan:landcover_to_rgb", {"INPUT": str(landcover), "OUTPUT": str(tmp_path / "a.tif"),
                                         "MODEL": str(models_dir / "my_region" / "landcover_to_rgb.onnx")})
    lcgan.run("lcgan:rgb_to_landcover", {"INPUT": str(imagery), "MODEL": "my_region:rgb_to_landcover",
                                         "OUTPUT": str(tmp_path / "b.tif")})
    assert read(tmp_path / "a.tif")[0].shape[0] == 3 and read(tmp_path / "b.tif")[0].shape == (32, 32)
    with pytest.raises(QgsProcessingException, match="translates rgb_to_landcover, not landcover_to_rgb"):
        lcgan.run("lcgan:landcover_to_rgb", {"INPUT": str(landcover), "OUTPUT": str(tmp_path / "c.tif"),
                                             "MODEL": str(models_dir / "misnamed" / "landcover_to_rgb.onnx")})


def test_the_dock_remembers_the_model_chosen_for_each_direction_across_sessions(models_dir: Path, iface,
                                                                                  qtbot) -> None:
    from lcgan_qgis.plugin.gui.dock import LcganDock

    dock = LcganDock(iface)
    qtbot.addWidget(dock)
    dock.set_direction(RGB2LC)
    dock.model_combo.setCurrentIndex(dock.model_combo.findText("my_region (adapted)"))
    dock.set_direction(LC2RGB)
    dock.model_combo.setCurrentIndex(dock.model_combo.findText("bundled"))
    dock.set_direction(RGB2LC)
    assert dock.model_combo.currentText() == "my_region (adapted)"  # (each direction keeps its own choice)
    dock.close()

    again = LcganDock(iface)  # a new QGIS session reads the settings
    qtbot.addWidget(again)
    again.set_direction(RGB2LC)
    assert again.model_combo.currentText() == "my_region (adapted)"
    assert again.chosen_model_path() == str(models_dir / "my_region" / "rgb_to_landcover.onnx")
    again.set_direction(LC2RGB)
    assert again.model_combo.currentText() == "bundled"
    shutil.rmtree(models_dir / "my_region")  # a remembered model that is gone: the bundled one, no error
    again.set_direction(RGB2LC)
    assert again.model_combo.currentText() == "bundled"
