"""The dock's input rows: direction, input layer (only layers that fit the direction are listed, with a note on
the others and why), red/green/blue bands for imagery, the model (bundled, or one adapted to a region: the Adapt
section and ``lcgan:finetune`` write them) and an optional model file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

from qgis.core import QgsMapLayerProxyModel, QgsProject, QgsRasterLayer, QgsSettings
from qgis.gui import QgsFileWidget, QgsMapLayerComboBox
from qgis.PyQt.QtWidgets import QComboBox, QFormLayout, QLabel, QWidget

from ...core.choices import DIRECTION_LABELS
from ...core.model.contract import Direction
from ..layers import direction_misfit, elevation_like, fits_direction
from ..models import adapted_models
from .bands import BandsRow

MAX_NAMED_LAYERS = 3  # layers named in the "Not listed" note (the tooltip names them all)
MODEL_KEY = "lcgan/dock/model_{}"  # the Model list's choice, per direction, across QGIS sessions


def hidden_layers_text(excluded: list[QgsRasterLayer], direction: Direction) -> str:
    """Which layers are not listed for ``direction`` and where they fit (an elevation raster: Elevation)."""
    kind = "one band of class codes" if direction is Direction.LANDCOVER_TO_RGB else "red, green, blue bands"
    other = DIRECTION_LABELS[Direction.RGB_TO_LANDCOVER if direction is Direction.LANDCOVER_TO_RGB
                             else Direction.LANDCOVER_TO_RGB]
    dems = [lyr for lyr in excluded if direction is Direction.LANDCOVER_TO_RGB and elevation_like(lyr)]
    others = [lyr for lyr in excluded if lyr not in dems]
    names = ", ".join(f"'{lyr.name()}'" for lyr in others[:MAX_NAMED_LAYERS])
    more = f" and {len(others) - MAX_NAMED_LAYERS} more" if len(others) > MAX_NAMED_LAYERS else ""
    parts = [f"Not listed: {names}{more}. This direction needs {kind}; they fit '{other}'."] if others else []
    if dems:
        parts.append(f"{', '.join(repr(lyr.name()) for lyr in dems)}: elevation, not land cover; choose it as "
                     "Elevation below.")
    return " ".join(parts)


class ModelList(QComboBox):
    """The Model list, read again each time it opens (a model adapted meanwhile by ``lcgan:finetune`` appears)."""

    def __init__(self, on_open: Callable[[], None]) -> None:
        super().__init__()
        self._on_open = on_open

    def showPopup(self) -> None:
        self._on_open()
        super().showPopup()


class InputBox(QWidget):
    """The rows, laid out by ``form``; ``bands_form`` lays out the three band boxes."""

    FIELDS: ClassVar[tuple[str, ...]] = ("direction_combo", "layer_combo", "hidden_layers_note", "bands_row",
                                         "band_combos", "bands_label", "model_combo", "model_widget")

    def __init__(self, form: QFormLayout, bands_form: QFormLayout) -> None:
        super().__init__()
        form.setContentsMargins(0, 0, 0, 0)
        self.setLayout(form)
        self.direction_combo = QComboBox()
        for direction in Direction:
            self.direction_combo.addItem(DIRECTION_LABELS[direction], direction.value)
        form.addRow("Direction", self.direction_combo)
        self.layer_combo = QgsMapLayerComboBox()
        self.layer_combo.setFilters(QgsMapLayerProxyModel.Filter.RasterLayer)
        form.addRow("Input layer", self.layer_combo)
        self.hidden_layers_note = QLabel()
        self.hidden_layers_note.setWordWrap(True)
        self.hidden_layers_note.setStyleSheet("color: palette(mid)")
        self.hidden_layers_note.setVisible(False)
        form.addRow(self.hidden_layers_note)
        self.bands_row = BandsRow(bands_form)
        self.band_combos = self.bands_row.combos
        self.bands_label = QLabel("Bands")
        form.addRow(self.bands_label, self.bands_row)
        self.model_combo = ModelList(lambda: self.refresh_models(self.direction()))
        self._listed: Direction | None = None  # the direction the Model list holds
        self.model_combo.currentIndexChanged.connect(self._remember_model)
        self.model_combo.setToolTip("The bundled model, or one adapted to your region (Adapt to your region, "
                                    "below). A model file, when chosen, is used instead.")
        form.addRow("Model", self.model_combo)
        self.model_widget = QgsFileWidget()
        self.model_widget.setFilter("lcgan models (*.onnx)")
        self.model_widget.lineEdit().setPlaceholderText("none: the model above")
        form.addRow("Model file (optional)", self.model_widget)

    def direction(self) -> Direction:
        return Direction(self.direction_combo.currentData())

    def refresh_models(self, direction: Direction, select: str | None = None) -> None:
        """List the bundled model and the adapted ones of ``direction``; keep the choice (the one remembered for
        ``direction`` when the list held another), or choose the model of ``direction`` in the folder ``select``
        (a model just adapted)."""
        before = self.model_combo.currentData()
        if self._listed is direction:
            current = before or ""
        else:
            current = str(QgsSettings().value(MODEL_KEY.format(direction.value), "") or "")
        self.model_combo.blockSignals(True)
        self.model_combo.clear()
        self.model_combo.addItem("bundled", "")
        for model in adapted_models(direction):
            self.model_combo.addItem(model.label, str(model.path))
            if select is not None and model.path.parent == Path(select):
                current = str(model.path)
        self.model_combo.setCurrentIndex(max(self.model_combo.findData(current), 0))
        self.model_combo.blockSignals(False)
        self._listed = direction
        if self.model_combo.currentData() != before:  # (a choice made here: what shows the model follows it)
            self.model_combo.currentIndexChanged.emit(self.model_combo.currentIndex())
        self._remember_model()

    def _remember_model(self) -> None:
        if self._listed is not None:
            QgsSettings().setValue(MODEL_KEY.format(self._listed.value), self.model_combo.currentData() or "")

    def refresh_filter(self, direction: Direction) -> None:
        """Offer only layers that fit ``direction``, and say which others are not listed and why."""
        layers = QgsProject.instance().mapLayers().values()
        excluded = [lyr for lyr in layers if isinstance(lyr, QgsRasterLayer) and not fits_direction(lyr, direction)]
        self.layer_combo.setExceptedLayerList(excluded)
        if excluded:
            self.hidden_layers_note.setText(hidden_layers_text(excluded, direction))
            self.hidden_layers_note.setToolTip("\n".join(direction_misfit(lyr, direction) or "" for lyr in excluded))
        self.hidden_layers_note.setVisible(bool(excluded))
