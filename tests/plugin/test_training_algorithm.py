"""``lcgan:finetune`` through Processing (real QgsApplication, a real child process with real optimizer steps):
the run, the model folder it leaves, a cancel that keeps the checkpoint, and the resume."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from tests.fixtures.plugin import recording_feedback, write_raster


def _region(folder: Path) -> dict[str, str]:
    codes = np.full((96, 96), 52, dtype=np.uint8)
    codes[:, 40:] = 42
    codes[60:, 70:] = 31
    colours = {52: (9000, 8000, 8000), 42: (7000, 9000, 7500), 31: (14000, 12000, 11000)}
    image = np.stack([np.vectorize(lambda c, b=b: colours[int(c)][b])(codes) for b in range(3)]).astype(np.uint16)
    image += np.random.default_rng(0).integers(0, 400, image.shape, dtype=np.uint16)
    return {"image": str(write_raster(folder / "image.tif", image, nodata=0)),
            "lc": str(write_raster(folder / "lc.tif", codes, nodata=255))}


def _params(region: dict[str, str], out: Path, **kw: object) -> dict[str, object]:
    params = {"IMAGERY": [region["image"]], "LANDCOVER": [region["lc"]], "STEPS": 2, "MINUTES": 0.0,
              "THREADS": 1, "OUTPUT": str(out)}
    params.update(kw)
    return params


def test_the_algorithm_is_in_the_training_group(lcgan: object) -> None:
    from qgis.core import QgsApplication

    algorithm = QgsApplication.processingRegistry().algorithmById("lcgan:finetune")
    assert algorithm is not None and algorithm.group() == "Training" and algorithm.groupId() == "training"
    names = {p.name() for p in algorithm.parameterDefinitions()}
    assert {"IMAGERY", "LANDCOVER", "LABELS", "CLASS_FIELD", "SCHEME", "TRAIN_AREA", "VAL_AREA", "MINUTES", "STEPS",
            "BASE", "DEVICE", "OUTPUT"} <= names
    probe = ("import sys; import lcgan_qgis.plugin.processing_provider.train_algorithm, "
             "lcgan_qgis.plugin.gui.adapt_panel; sys.exit('torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", probe], check=False).returncode == 0  # QGIS never imports torch


def test_finetune_runs_in_a_child_process_and_leaves_a_model_folder(lcgan: object, tmp_path: Path) -> None:
    region = _region(tmp_path)
    feedback = recording_feedback()
    out = tmp_path / "adapted"
    result = lcgan.run("lcgan:finetune", _params(region, out), feedback=feedback)  # type: ignore[attr-defined]
    assert (out / "rgb_to_landcover.onnx").is_file() and (out / "landcover_to_rgb.onnx").is_file()
    report = json.loads((out / "report.json").read_text())
    assert result["ACCURACY"] == pytest.approx(report["verdict"]["accuracy"])
    assert any("latest validation accuracy" in line for line in feedback.lines)
    from lcgan_qgis.core.model.runtime import load_model

    with load_model(out / "rgb_to_landcover.onnx", "cpu", precision="fp32") as model:
        assert set(model.contract.scheme.codes) >= {31, 42, 52}


def test_class_balance_and_elevation_reach_the_child(lcgan: object, tmp_path: Path) -> None:
    """CLASS_BALANCE goes into the recipe; ELEVATION (a DEM on a coarser grid) adds a terrain-aware model lit by it."""
    region = _region(tmp_path)
    rows, cols = np.mgrid[0:48, 0:48]
    dem = (1500 + 100 * np.sin(cols / 4.0) + 60 * np.cos(rows / 5.0)).astype(np.float32)
    dem_path = write_raster(tmp_path / "dem.tif", dem, nodata=-32768,  # 60 m pixels over the 30 m region
                            geotransform=(300000.0, 60.0, 0.0, 4150000.0, 0.0, -60.0))
    out = tmp_path / "balanced"
    lcgan.run("lcgan:finetune", _params(region, out, STEPS=1, CLASS_BALANCE=0.5,  # type: ignore[attr-defined]
                                        ELEVATION=str(dem_path)), feedback=recording_feedback())
    provenance = json.loads((out / "provenance.json").read_text())
    assert provenance["recipe"]["class_balance"] == 0.5
    report = json.loads((out / "report.json").read_text())
    assert "error" not in report["files"]["landcover_to_rgb_terrain.onnx"]
    from lcgan_qgis.core.model.runtime import load_model

    with load_model(out / "landcover_to_rgb_terrain.onnx", "cpu", precision="fp32") as model:
        assert model.contract.terrain is not None and model.contract.extra["generator"] == "relit"
        terrain_codes = model.contract.scheme.codes
    with load_model(out / "landcover_to_rgb.onnx", "cpu", precision="fp32") as model:
        assert terrain_codes == model.contract.scheme.codes  # the adapted map-only model, lit


def test_an_elevation_gdal_cannot_read_is_one_line_before_any_child(lcgan: object, tmp_path: Path) -> None:
    """ELEVATION read as the translation algorithms read it: a valid layer that is no file GDAL reads (here QGIS's
    virtual raster calculator over a real DEM) stops the run with one line naming it; no folder is made."""
    from qgis.core import QgsProcessingException, QgsProject, QgsRasterLayer

    region = _region(tmp_path)
    dem = write_raster(tmp_path / "dem.tif", np.full((48, 48), 1500.0, np.float32), nodata=-32768,
                       geotransform=(300000.0, 60.0, 0.0, 4150000.0, 0.0, -60.0))
    uri = (f"?crs=EPSG:32612&extent=300000,4147120,302880,4150000&width=48&height=48&formula=%22d@1%22&d:uri={dem}"
           "&d:provider=gdal")
    layer = QgsRasterLayer(uri, "computed DEM", "virtualraster")
    assert layer.isValid() and layer.providerType() == "virtualraster"
    QgsProject.instance().addMapLayer(layer)
    out = tmp_path / "never"
    try:
        with pytest.raises(QgsProcessingException, match="Elevation layer 'computed DEM' is not a file GDAL can read"):
            lcgan.run("lcgan:finetune", _params(region, out, ELEVATION=layer.id()),  # type: ignore[attr-defined]
                      feedback=recording_feedback())
        layer.setName("computed imagery")  # the same rule for the imagery and the land cover
        with pytest.raises(QgsProcessingException, match="Imagery layer 'computed imagery' is not a file GDAL"):
            lcgan.run("lcgan:finetune", _params(region, out, IMAGERY=[layer.id()]),  # type: ignore[attr-defined]
                      feedback=recording_feedback())
    finally:
        QgsProject.instance().removeMapLayer(layer.id())
    assert not out.exists()


def test_cancel_keeps_the_checkpoint_and_the_same_folder_resumes(lcgan: object, tmp_path: Path) -> None:
    from qgis.core import QgsProcessingException

    region = _region(tmp_path)
    out = tmp_path / "adapted"
    feedback = recording_feedback()

    def cancel_after_a_step() -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not any(line.startswith("step 1 ") for line in feedback.lines):
            time.sleep(0.2)
        feedback.cancel()

    watcher = threading.Thread(target=cancel_after_a_step, daemon=True)
    watcher.start()
    params = _params(region, out, STEPS=100000)
    with contextlib.suppress(QgsProcessingException):  # (Processing may report the cancel as an error)
        lcgan.run("lcgan:finetune", params, feedback=feedback)  # type: ignore[attr-defined]
    watcher.join(timeout=5)
    checkpoint = out / "checkpoints" / "last.pt"
    assert checkpoint.is_file() and not (out / "report.json").exists()
    resumed = recording_feedback()
    lcgan.run("lcgan:finetune", _params(region, out, STEPS=3), feedback=resumed)  # type: ignore[attr-defined]
    report = json.loads((out / "report.json").read_text())
    assert report["speed"]["steps"] >= 3


def test_the_adapt_panel_writes_into_the_user_models_folder(qgis_app: object, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LCGAN_HOME", str(tmp_path / "home"))
    from lcgan_qgis.plugin.gui.adapt_panel import AdaptPanel
    from lcgan_qgis.plugin.training_process import user_models_dir

    panel = AdaptPanel()
    panel.name_edit.setText("Potomac valley 2011")
    assert panel.output_folder() == user_models_dir() / "Potomac_valley_2011"
    assert user_models_dir() == tmp_path / "home" / "models"
    assert panel.start() is None and "Choose the imagery" in panel.status_label.text()
    from qgis.core import QgsProject, QgsRasterLayer

    region = _region(tmp_path)
    dem = write_raster(tmp_path / "dem.tif", np.full((48, 48), 1500.0, np.float32),
                       geotransform=(300000.0, 60.0, 0.0, 4150000.0, 0.0, -60.0))
    layers = [QgsRasterLayer(path, name) for name, path in (("image", region["image"]), ("lc", region["lc"]),
                                                             ("dem", str(dem)))]
    QgsProject.instance().addMapLayers(layers)
    try:
        panel = AdaptPanel()
        panel.imagery_combo.setLayer(layers[0])
        panel.landcover_combo.setLayer(layers[1])
        assert panel.elevation_combo.currentLayer() is None  # optional, empty by default
        run = panel.training_run()
        assert run is not None and "--elevation" not in run.args
        panel.elevation_combo.setLayer(layers[2])
        run = panel.training_run()
        assert run is not None and run.args[run.args.index("--elevation") + 1] == str(dem)
    finally:
        QgsProject.instance().removeMapLayers([layer.id() for layer in layers])


def test_a_finished_adaptation_opens_its_report_and_announces_its_folder(qgis_app: object, tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """report.png when the run drew it, else report.json (no matplotlib in the child); the desktop's opener is the
    one stand-in (no desktop here)."""
    from lcgan_qgis.plugin.gui import adapt_panel
    from lcgan_qgis.plugin.training_process import TrainingRun

    opened: list[str] = []

    class Desktop:
        @staticmethod
        def openUrl(url: object) -> bool:  # (Qt's name)
            opened.append(url.toLocalFile())
            return True

    monkeypatch.setattr(adapt_panel, "QDesktopServices", Desktop)
    panel = adapt_panel.AdaptPanel()
    announced: list[str] = []
    panel.model_added.connect(announced.append)
    out = tmp_path / "region"
    out.mkdir()
    (out / "report.json").write_text("{}", encoding="utf-8")
    panel._done(TrainingRun([], str(out)), "")
    assert opened == [str(out / "report.json")] and announced == [str(out)]
    assert panel.status_label.text() == f"Done: {out}" and panel.start_button.isEnabled()
    (out / "report.png").write_bytes(b"\x89PNG")
    panel._done(TrainingRun([], str(out)), "")
    assert opened[-1] == str(out / "report.png")


def test_adapt_without_pytorch_offers_its_install_in_the_message_bar(iface, qtbot, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The stand-in: no interpreter with PyTorch (this machine has one). The offer is the installer's real one,
    asked of QGIS's own Python, which has no PyTorch in a fresh profile."""
    from qgis.PyQt.QtWidgets import QPushButton

    from lcgan_qgis.installer import status
    from lcgan_qgis.plugin import training_process as tp
    from lcgan_qgis.plugin.gui.adapt_panel import AdaptPanel
    from lcgan_qgis.plugin.gui.deps_dialog import InstallOffer

    if not Path("/usr/bin/python3").is_file():
        pytest.skip("no system Python (QGIS's) at /usr/bin/python3")

    def no_pytorch() -> None:
        raise tp.TrainingUnavailableError("Fine-tuning needs PyTorch: ... Tried: python3: No module named 'torch'")

    monkeypatch.setattr(tp, "training_environment", no_pytorch)
    monkeypatch.setattr(status, "python_executable", lambda: "/usr/bin/python3")  # (QGIS's own, not this venv)
    monkeypatch.setenv("LCGAN_HOME", str(tmp_path / "home"))
    panel = AdaptPanel(iface)
    out = str(tmp_path / "region")
    panel.task = tp.FineTuneTask(tp.TrainingRun(tp.finetune_args([str(tmp_path / "x.tif")], out, minutes=1), out),
                                 on_done=panel._done)
    assert panel.task.run() is False and panel.task.unavailable
    panel.task.finished(False)
    assert panel.task is None and "install it from the message bar" in panel.status_label.text()
    (item,) = iface.messageBar().items()
    assert item.text().startswith("Fine-tuning needs PyTorch")
    next(b for b in item.findChildren(QPushButton) if b.text() == "Install…").click()
    dialog = InstallOffer.offers[-1].dialog
    assert dialog is not None and dialog.isVisible() and "torch==" in " ".join(dialog.plan.requirements)
    dialog.close()
    InstallOffer.offers[-1].withdraw()
