"""The dock remembers its choices across QGIS sessions (``QgsSettings``, under ``lcgan/dock/``): direction, model,
bundled model, seed, area mode, options. The layers are the project's, so they are not remembered here; the output
folder is remembered by its own box."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from qgis.core import QgsSettings
from qgis.gui import QgsFileWidget
from qgis.PyQt.QtWidgets import QAbstractButton, QComboBox, QDoubleSpinBox, QSpinBox

PREFIX = "lcgan/dock/"
NONE_TEXT = "<none>"  # (a combo item whose data is None, e.g. radiometry "model default")


def _signal(widget: Any) -> Any:
    if isinstance(widget, QComboBox):
        return widget.currentIndexChanged
    if isinstance(widget, (QSpinBox, QDoubleSpinBox)):
        return widget.valueChanged
    if isinstance(widget, QAbstractButton):
        return widget.toggled
    return widget.fileChanged


def _value(widget: Any) -> Any:
    if isinstance(widget, QComboBox):
        data = widget.currentData()
        return NONE_TEXT if data is None else str(data)
    if isinstance(widget, (QSpinBox, QDoubleSpinBox)):
        return widget.value()
    if isinstance(widget, QAbstractButton):
        return widget.isChecked()
    return widget.filePath()


def _restore(widget: Any, stored: Any) -> None:
    if isinstance(widget, QComboBox):
        for index in range(widget.count()):
            data = widget.itemData(index)
            if (NONE_TEXT if data is None else str(data)) == stored:
                widget.setCurrentIndex(index)
    elif isinstance(widget, QDoubleSpinBox):
        widget.setValue(float(stored))
    elif isinstance(widget, QSpinBox):
        widget.setValue(int(stored))
    elif isinstance(widget, QAbstractButton):
        widget.setChecked(stored in (True, "true", "1", 1))
    elif isinstance(widget, QgsFileWidget):
        widget.setFilePath(str(stored))


class DockState:
    """Restores ``fields`` (name -> widget) from the settings, then saves each one whenever it changes."""

    def __init__(self, fields: Iterable[tuple[str, Any]]) -> None:
        self.fields = dict(fields)

    def restore(self) -> None:
        settings = QgsSettings()
        for name, widget in self.fields.items():
            stored = settings.value(PREFIX + name, None)
            if stored is not None:
                try:
                    _restore(widget, stored)
                except (TypeError, ValueError):  # a value of an older version: keep the default
                    settings.remove(PREFIX + name)

    def follow(self) -> None:
        """Save each field when it changes."""
        for name, widget in self.fields.items():
            _signal(widget).connect(lambda *_args, n=name, w=widget: QgsSettings().setValue(PREFIX + n, _value(w)))
