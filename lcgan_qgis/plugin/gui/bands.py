"""The dock's red, green, blue band boxes: the bands the run reads, named as the layer names them (a web layer's
red, green and blue; a file's "Band 1 (Red)"), set to the right mapping for any 3-band or RGBA layer."""

from __future__ import annotations

from typing import Any

from qgis.PyQt.QtWidgets import QComboBox, QFormLayout, QWidget

from ..layers import band_names, default_bands

COLOURS = ("Red", "Green", "Blue")


class BandCombo(QComboBox):
    """One band box; its item data is the band number."""

    def currentBand(self) -> int:  # (the name QgsRasterBandComboBox uses)
        data = self.currentData()
        return int(data) if data is not None else -1

    def setBand(self, band: int) -> None:
        index = self.findData(band)
        if index >= 0:
            self.setCurrentIndex(index)


class BandsRow(QWidget):
    """Three band boxes in a form laid out by ``form``."""

    def __init__(self, form: QFormLayout) -> None:
        super().__init__()
        form.setContentsMargins(0, 0, 0, 0)
        self.setLayout(form)
        self.combos = [BandCombo() for _ in COLOURS]
        for colour, combo in zip(COLOURS, self.combos):
            combo.setToolTip(f"The layer's band holding {colour.lower()}.")
            form.addRow(colour, combo)

    def set_layer(self, layer: Any) -> None:
        """List ``layer``'s bands and select its red, green, blue (none for a layer without three)."""
        names = band_names(layer)
        chosen = default_bands(layer) or ()
        for position, combo in enumerate(self.combos):
            combo.blockSignals(True)
            combo.clear()
            for band, name in names:
                combo.addItem(name, band)
            if position < len(chosen):
                combo.setBand(chosen[position])
            combo.blockSignals(False)

    def bands(self) -> tuple[int, ...]:
        return tuple(combo.currentBand() for combo in self.combos)
