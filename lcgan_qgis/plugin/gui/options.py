"""The dock's folded Options: tile overlap, batch, device, precision and backend (with the optional OpenVINO's
state and its Install button), radiometry, the resolution check, the sun of terrain-aware models, and the extra
outputs of land cover (confidence, polygons with their smallest patch, a legend of every class)."""

from __future__ import annotations

from typing import ClassVar

from qgis.core import QgsMapLayerProxyModel
from qgis.gui import QgsCollapsibleGroupBox, QgsDoubleSpinBox, QgsMapLayerComboBox, QgsSpinBox
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtWidgets import QCheckBox, QComboBox, QFormLayout, QHBoxLayout, QLabel, QPushButton, QWidget

from ...core.choices import (
    BACKEND_HELP,
    BACKEND_LABELS,
    BACKENDS,
    DEVICE_LABELS,
    DEVICES,
    PRECISION_HELP,
    PRECISION_LABELS,
    PRECISIONS,
    RADIOMETRY_CHOICES,
    RADIOMETRY_HELP,
    RADIOMETRY_LABELS,
)
from ...core.model.precision import MIN_CLASS_AGREEMENT, MIN_PSNR_DB
from ...core.rasters.resampling import GSD_TOLERANCE
from ...installer.status import check_openvino

#: The sun spin boxes of terrain-aware models: label, highest value, what the angle is measured from.
SUN_FIELDS = (("Sun azimuth", 359.9, "clockwise from north"), ("Sun elevation", 90.0, "above the horizon"))


#: The property QgsCollapsibleGroupBox sets on its children when it folds, to show them again when it unfolds.
GROUP_BOX_HIDE_KEY = "CollGrpBxHide"


def set_shown(widget: QWidget, shown: bool) -> None:
    """Show or hide ``widget`` for good: a hidden row of a QgsCollapsibleGroupBox is not shown again when the box
    unfolds (it shows every child it hid, even on a repeated unfold or when its panel is shown again)."""
    widget.setVisible(shown)
    if not shown:
        widget.setProperty(GROUP_BOX_HIDE_KEY, False)


def wrapped_check(check: QCheckBox, text: str) -> QWidget:
    """``check`` beside ``text`` in a word-wrapped label (a check box's own text never wraps and would widen the
    narrow dock); clicking the text toggles the box, as a check box's own text does."""
    row = QWidget()
    layout = QHBoxLayout(row)
    layout.setContentsMargins(0, 0, 0, 0)
    label = QLabel(text)
    label.setWordWrap(True)
    label.setToolTip(check.toolTip())
    label.mousePressEvent = lambda _event: check.toggle()  # type: ignore[method-assign]
    check.setAccessibleName(text)
    layout.addWidget(check)
    layout.addWidget(label, 1)
    return row


def choice_combo(values: tuple, labels: dict, helps: dict) -> QComboBox:
    """A combo box of ``values`` shown by their short ``labels``, each item's tooltip its ``helps`` line."""
    combo = QComboBox()
    for value in values:
        combo.addItem(labels[value], value)
        combo.setItemData(combo.count() - 1, helps[value], Qt.ItemDataRole.ToolTipRole)
    return combo


def raster_combo(optional: bool = False, tooltip: str = "") -> QgsMapLayerComboBox:
    """A combo box of the project's raster layers; ``optional``: it may be (and starts) empty."""
    combo = QgsMapLayerComboBox()
    combo.setFilters(QgsMapLayerProxyModel.Filter.RasterLayer)
    if optional:
        combo.setAllowEmptyLayer(True)
        combo.setLayer(None)
    if tooltip:
        combo.setToolTip(tooltip)
    return combo


class OptionsBox(QgsCollapsibleGroupBox):
    """The Options group, folded; ``form`` lays its rows out (the dock's form style)."""

    #: The fields the dock reads.
    FIELDS: ClassVar[tuple[str, ...]] = (
        "overlap_spin", "batch_spin", "device_combo", "precision_combo", "backend_combo", "openvino_label",
        "openvino_button", "radiometry_combo", "radiometry_label", "check_gsd", "sun_spins", "confidence_check",
        "polygons_check", "min_area_spin", "min_area_label", "all_classes_check",
    )

    def __init__(self, form: QFormLayout) -> None:
        super().__init__("Options")
        self.setCollapsed(True)
        options = form
        self.setLayout(options)
        self.overlap_spin = QgsSpinBox()
        self.overlap_spin.setRange(-1, 4096)
        self.overlap_spin.setSpecialValueText("model default")
        self.overlap_spin.setClearValue(-1)
        self.overlap_spin.setValue(-1)
        self.overlap_spin.setSuffix(" px")
        options.addRow("Tile overlap", self.overlap_spin)
        self.batch_spin = QgsSpinBox()
        self.batch_spin.setRange(1, 256)
        self.batch_spin.setClearValue(1)
        options.addRow("Tiles per batch", self.batch_spin)
        self.device_combo = QComboBox()
        for device in DEVICES:
            self.device_combo.addItem(DEVICE_LABELS[device], device)
        options.addRow("Device", self.device_combo)
        self._add_backend_rows(options)
        self.radiometry_combo = choice_combo(RADIOMETRY_CHOICES, RADIOMETRY_LABELS, RADIOMETRY_HELP)
        self.radiometry_combo.setToolTip("How image values map to the model's range; each choice explains itself.")
        self.radiometry_label = QLabel("Image values")
        options.addRow(self.radiometry_label, self.radiometry_combo)
        self.check_gsd = QCheckBox()
        self.check_gsd.setToolTip(f"When the layer's pixel size differs from the model's by more than "
                                  f"{GSD_TOLERANCE * 100:g} %, translate at the model's resolution and resample the "
                                  "result back to the layer's grid. Layers in degrees are measured on the ground.")
        self.check_gsd.setChecked(True)
        options.addRow(wrapped_check(self.check_gsd, "Resample to the model's resolution"))
        self.sun_spins = [self._sun_spin(options, *field) for field in SUN_FIELDS]
        self.confidence_check = QCheckBox("Write confidence")
        self.confidence_check.setToolTip("A second GeoTIFF with the winning class's probability (0-1) per pixel.")
        options.addRow(self.confidence_check)
        self.polygons_check = QCheckBox("Write polygons")
        self.polygons_check.setToolTip("The classes as polygons with their code and name: a GeoPackage beside the "
                                       "output (<output>_polygons.gpkg).")
        options.addRow(self.polygons_check)
        self.min_area_spin = QgsSpinBox()
        self.min_area_spin.setRange(0, 1_000_000)
        self.min_area_spin.setSuffix(" px")
        self.min_area_spin.setToolTip("Patches smaller than this are merged into their largest neighbour first.")
        self.min_area_label = QLabel("Smallest polygon")
        options.addRow(self.min_area_label, self.min_area_spin)
        self.all_classes_check = QCheckBox("Legend: all classes")
        self.all_classes_check.setToolTip("Off: the legend lists only the classes present in the result.")
        options.addRow(self.all_classes_check)

    def _add_backend_rows(self, options: QFormLayout) -> None:
        self.precision_combo = choice_combo(PRECISIONS, PRECISION_LABELS, PRECISION_HELP)
        self.precision_combo.setToolTip(
            f"auto: the fastest path (OpenVINO int8 or bf16, onnxruntime int8) that keeps >= {MIN_CLASS_AGREEMENT:.0%} "
            f"of land-cover pixels (>= {MIN_PSNR_DB:g} dB for imagery) against fp32 on the model's calibration "
            "windows, else fp32."
        )
        options.addRow("Speed / precision", self.precision_combo)
        self.backend_combo = choice_combo(BACKENDS, BACKEND_LABELS, BACKEND_HELP)
        self.backend_combo.setToolTip("Which inference library runs the model; each choice explains itself.")
        options.addRow("Inference library", self.backend_combo)
        self.openvino_label = QLabel()  # filled when the box is first unfolded (OpenVINO is imported to ask it)
        self.openvino_label.setWordWrap(True)
        self.openvino_button = QPushButton("Install OpenVINO…")
        self.openvino_button.setToolTip("The optional OpenVINO backend, pinned, into the plugin's own folder.")
        self.openvino_button.setVisible(False)
        options.addRow(self.openvino_label)
        options.addRow(self.openvino_button)
        self.collapsedStateChanged.connect(self._unfolded)  # (asking OpenVINO imports it: only when looked at)

    @staticmethod
    def _sun_spin(options: QFormLayout, label: str, high: float, measured: str) -> tuple[QWidget, QgsDoubleSpinBox]:
        spin = QgsDoubleSpinBox()
        spin.setRange(-1.0, high)
        spin.setDecimals(1)
        spin.setSpecialValueText("model default")
        spin.setClearValue(-1.0)
        spin.setValue(-1.0)
        spin.setSuffix(" °")
        spin.setToolTip(f"The sun for the hillshade of terrain-aware models, degrees {measured} (model default: its "
                        "training imagery's sun).")
        options.addRow(label, spin)
        return options.labelForField(spin), spin

    def _unfolded(self, collapsed: bool) -> None:
        if not collapsed and not self.openvino_label.text():
            self.refresh_openvino()

    def refresh_openvino(self, *_args: object) -> None:
        """Say whether the optional OpenVINO backend runs here, with the Install button when it does not."""
        status = check_openvino()
        self.openvino_label.setText(status.summary if status.ok else status.problem)
        set_shown(self.openvino_button, bool(status.missing))
