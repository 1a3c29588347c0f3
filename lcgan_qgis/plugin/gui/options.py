"""The dock's folded Options: tile overlap, batch, device, radiometry, the resolution check, and the extra outputs
of land cover (confidence, polygons with their smallest patch, a legend of every class)."""

from __future__ import annotations

from typing import ClassVar

from qgis.gui import QgsCollapsibleGroupBox, QgsSpinBox
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtWidgets import QCheckBox, QComboBox, QFormLayout, QLabel

from ...core.choices import DEVICE_LABELS, DEVICES, RADIOMETRY_CHOICES, RADIOMETRY_HELP, RADIOMETRY_LABELS
from ...core.resampling import GSD_TOLERANCE


class OptionsBox(QgsCollapsibleGroupBox):
    """The Options group, folded; ``form`` lays its rows out (the dock's form style)."""

    #: The fields the dock reads.
    FIELDS: ClassVar[tuple[str, ...]] = (
        "overlap_spin", "batch_spin", "device_combo", "radiometry_combo", "radiometry_label", "check_gsd",
        "confidence_check", "polygons_check", "min_area_spin", "min_area_label", "all_classes_check",
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
        self.radiometry_combo = QComboBox()
        for mode in RADIOMETRY_CHOICES:
            self.radiometry_combo.addItem(RADIOMETRY_LABELS[mode], mode)
            self.radiometry_combo.setItemData(self.radiometry_combo.count() - 1, RADIOMETRY_HELP[mode],
                                              Qt.ItemDataRole.ToolTipRole)
        self.radiometry_combo.setToolTip("How image values map to the model's range; each choice explains itself.")
        self.radiometry_label = QLabel("Radiometry")
        options.addRow(self.radiometry_label, self.radiometry_combo)
        self.check_gsd = QCheckBox("Resample to model GSD")
        self.check_gsd.setToolTip(f"When the layer's pixel size differs from the model's by more than "
                                  f"{GSD_TOLERANCE * 100:g} %, translate at the model's resolution and resample the "
                                  "result back to the layer's grid. Layers in degrees are measured on the ground.")
        self.check_gsd.setChecked(True)
        options.addRow(self.check_gsd)
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
