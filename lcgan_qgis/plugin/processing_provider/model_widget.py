"""The MODEL parameter's widget in Processing dialogs: an editable list of the bundled models (the terrain-aware
one too) and of the adapted ones in the user-models folder, with a Browse button for any .onnx file. Its value is
the model file's path, so a dialog, a batch row and ``qgis_process`` (which also accepts a keyword such as
``terrain``) read the same parameter."""

from __future__ import annotations

from typing import Any

from processing.gui.wrappers import WidgetWrapper
from qgis.PyQt.QtWidgets import QComboBox, QFileDialog, QHBoxLayout, QToolButton, QWidget

from ...core.model.contract import Direction
from ..models import model_choices

DEFAULT_TEXT = "bundled model (default)"


class ModelWidgetWrapper(WidgetWrapper):
    """An editable combo box of the bundled and adapted models of the algorithm's direction, and a Browse
    button."""

    def createWidget(self) -> QWidget:
        widget = QWidget()
        row = QHBoxLayout(widget)
        row.setContentsMargins(0, 0, 0, 0)
        self.combo = QComboBox()
        self.combo.setEditable(True)
        direction = self.parameterDefinition().metadata().get("lcgan_direction") or None
        optional = bool(self.parameterDefinition().flags() & self.parameterDefinition().Flag.FlagOptional)
        if optional:
            self.combo.addItem(DEFAULT_TEXT, "")
        for model in model_choices(Direction(direction) if direction else None):
            self.combo.addItem(model.label, str(model.path))
        self.combo.setToolTip("A bundled or adapted model, or any lcgan model file (.onnx): type its path or Browse.")
        browse = QToolButton()
        browse.setText("…")
        browse.setToolTip("Choose a model file (.onnx)")
        browse.clicked.connect(self._browse)
        row.addWidget(self.combo, 1)
        row.addWidget(browse)
        self.combo.currentTextChanged.connect(lambda *_: self.widgetValueHasChanged.emit(self))
        return widget

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self.widget, "lcgan model", "", "lcgan models (*.onnx)")
        if path:
            self.setValue(path)

    def setValue(self, value: Any) -> None:
        text = "" if value is None else str(value)
        index = self.combo.findData(text)
        if index >= 0:
            self.combo.setCurrentIndex(index)
        else:
            self.combo.setEditText(text)

    def value(self) -> str:
        index = self.combo.findText(self.combo.currentText())
        if index >= 0:
            return self.combo.itemData(index) or ""
        return self.combo.currentText().strip()
