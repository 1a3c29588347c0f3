"""The dock's "Adapt to your region" section: fine-tune the models on the user's imagery and land cover.

It gathers the same inputs as ``lcgan:finetune`` (imagery, land cover, minutes, the new model's name) and starts a
:class:`~lcgan_qgis.plugin.training_process.FineTuneTask`: training runs in a child Python process with PyTorch,
QGIS stays responsive, Cancel keeps the checkpoint and Start with the same name resumes. The model goes to the
user-models folder (``<profile>/lcgan/models/<name>``); when it is done its report opens and
:attr:`AdaptPanel.model_added` carries the folder, for the model lists to pick it up.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from qgis.core import Qgis, QgsApplication
from qgis.gui import QgsCollapsibleGroupBox
from qgis.PyQt.QtCore import QUrl, pyqtSignal
from qgis.PyQt.QtGui import QDesktopServices
from qgis.PyQt.QtWidgets import QDoubleSpinBox, QFormLayout, QLabel, QLineEdit

from ..training_process import FineTuneTask, TrainingRun, finetune_args, user_models_dir
from .options import raster_combo
from .run_controls import add_run_controls


class AdaptPanel(QgsCollapsibleGroupBox):
    """Imagery, land cover, minutes, name; Start / Cancel; progress with the latest validation accuracy."""

    model_added = pyqtSignal(str)

    def __init__(self, iface: Any = None) -> None:
        super().__init__("Adapt to your region")
        self.iface = iface
        self.setCollapsed(True)
        self.task: FineTuneTask | None = None
        form = QFormLayout(self)
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapAllRows)  # (labels above: the dock is narrow)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        about = QLabel("Trains the models further on your imagery and its land cover (in a separate process; QGIS "
                       "stays usable). The new model then appears in the Model list above.")
        about.setWordWrap(True)
        form.addRow(about)
        self.imagery_combo = raster_combo()
        self.landcover_combo = raster_combo()
        self.elevation_combo = raster_combo(optional=True, tooltip="A DEM of the region: the new model folder also "
                                            "gets a terrain-aware model that paints its relief.")
        self.minutes_spin = QDoubleSpinBox()
        self.minutes_spin.setRange(1.0, 24 * 60.0)
        self.minutes_spin.setDecimals(0)
        self.minutes_spin.setValue(10.0)
        self.minutes_spin.setSuffix(" min")
        self.name_edit = QLineEdit("my_region")
        self.name_edit.setToolTip(f"The adapted model goes to {user_models_dir()}/<name>; the same name resumes.")
        form.addRow("Imagery of your region", self.imagery_combo)
        form.addRow("Its land cover (labels)", self.landcover_combo)
        form.addRow("Elevation (optional: relief)", self.elevation_combo)
        form.addRow("Training time", self.minutes_spin)
        form.addRow("New model's name", self.name_edit)
        controls = add_run_controls(form, "Adapt", self.start, self.cancel)
        self.start_button, self.stop_button = controls.start, controls.cancel
        self.progress_bar, self.status_label = controls.progress, controls.status

    def output_folder(self) -> Path:
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.name_edit.text()).strip("_") or "my_region"
        return user_models_dir() / name

    def training_run(self) -> TrainingRun | None:
        """The run the chosen layers and settings make (``None``, said in the panel, without imagery or labels)."""
        imagery, landcover = self.imagery_combo.currentLayer(), self.landcover_combo.currentLayer()
        if imagery is None or landcover is None:
            self.status_label.setText("Choose the imagery and its land cover.")
            return None
        dem = self.elevation_combo.currentLayer()
        out = self.output_folder()
        return TrainingRun(finetune_args([imagery.source()], str(out), [landcover.source()],
                                         minutes=self.minutes_spin.value(),
                                         elevation=dem.source() if dem is not None else ""), str(out))

    def start(self) -> FineTuneTask | None:
        run = self.training_run()
        if run is None:
            return None
        out = run.out
        self.task = FineTuneTask(run, on_done=self._done)
        self.task.progressChanged.connect(self._progress)
        self.start_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        self.status_label.setText(f"Training in a separate process -> {out}")
        QgsApplication.taskManager().addTask(self.task)
        return self.task

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()

    def _progress(self, value: float) -> None:
        self.progress_bar.setValue(int(value))
        last = self.task.run_state.last if self.task is not None else {}
        if last:
            self.status_label.setText(f"step {last['step']} ({last['minutes']:.1f} min), latest validation accuracy "
                                      f"{last['accuracy']:.3f}")

    def _done(self, run: TrainingRun, error: str) -> None:
        self.start_button.setEnabled(True)
        self.stop_button.setEnabled(False)
        if run.canceled:
            self.status_label.setText(f"Cancelled; the checkpoint is kept: Adapt with the name "
                                      f"{Path(run.out).name!r} resumes.")
        elif error and self.task is not None and self.task.unavailable:
            self.status_label.setText("Fine-tuning needs PyTorch: install it from the message bar, then Adapt again.")
            self.offer_pytorch()
        elif error:
            self.status_label.setText(error)
            self._message(error, Qgis.MessageLevel.Critical)
        elif run.report_path.is_file():
            self.status_label.setText(f"Done: {run.out}")
            picture = Path(run.out) / "report.png"  # (not drawn where matplotlib is missing: the numbers, then)
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(picture if picture.is_file() else run.report_path)))
            self.model_added.emit(run.out)
        self.task = None

    def offer_pytorch(self) -> Any:
        """The installer's PyTorch offer (and what fine-tuning imports beside it) in the message bar."""
        from ...installer.folders import torch_dir
        from ...installer.status import torch_status
        from .deps_dialog import offer_install

        status = torch_status()
        if not status.missing or self.iface is None or not hasattr(self.iface, "messageBar"):
            self.status_label.setText(status.summary or status.problem)
            return None
        return offer_install(self.iface, status, torch_dir(), on_installed=lambda activation: self.status_label.setText(
            "PyTorch is installed: press Adapt again." if activation.ready else activation.message))

    def _message(self, text: str, level: Qgis.MessageLevel) -> None:
        if self.iface is not None and hasattr(self.iface, "messageBar"):
            self.iface.messageBar().pushMessage("lcgan", text, level=level)
