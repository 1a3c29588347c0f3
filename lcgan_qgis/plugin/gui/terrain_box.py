"""The dock's rows of land cover -> synthetic RGB only: which bundled model runs when no model file is chosen (map
only or with relief), the elevation raster (DEM) and whether the chosen model needs it, and the texture seed."""

from __future__ import annotations

from typing import ClassVar

from qgis.core import QgsRasterLayer
from qgis.gui import QgsSpinBox
from qgis.PyQt.QtWidgets import QComboBox, QFormLayout, QLabel, QWidget

from ...core.errors import InputRasterError
from ...core.model.contract import Direction, ModelContract
from ...core.resources import bundled_terrain_model_path
from ...core.terrain.elevation import missing_elevation_message
from ..layers import elevation_file
from .options import raster_combo

#: Bundled land cover -> RGB models the user picks from when no model file is chosen.
BUNDLED_MAP_ONLY, BUNDLED_TERRAIN = "map", "terrain"
#: The largest seed the dock offers (a spin box holds 32-bit integers; scripts may use up to 2**63 - 1).
MAX_DOCK_SEED = 2**31 - 1


class TerrainBox(QWidget):
    """The rows, laid out by ``form`` (the dock's form style)."""

    #: The fields the dock reads.
    FIELDS: ClassVar[tuple[str, ...]] = ("bundled_combo", "bundled_label", "elevation_combo", "elevation_label",
                                         "elevation_hint", "seed_spin")

    def __init__(self, form: QFormLayout) -> None:
        super().__init__()
        form.setContentsMargins(0, 0, 0, 0)
        self.setLayout(form)
        self.bundled_combo = QComboBox()
        self.bundled_combo.addItem("from the map only", BUNDLED_MAP_ONLY)
        self.bundled_combo.addItem("with relief (needs elevation)", BUNDLED_TERRAIN)
        self.bundled_combo.setToolTip("Which bundled land cover -> RGB model runs when no model file is chosen. The "
                                      "one with relief paints slopes, ridges and canyons from an elevation raster "
                                      "(DEM).")
        self.bundled_label = QLabel("Bundled model")
        form.addRow(self.bundled_label, self.bundled_combo)
        self.elevation_combo = raster_combo(optional=True, tooltip="A DEM (any CRS and pixel size; resampled onto "
                                            "the land cover's grid) for terrain-aware models. Map-only models ignore "
                                            "it.")
        self.elevation_label = QLabel("Elevation")
        form.addRow(self.elevation_label, self.elevation_combo)
        self.elevation_hint = QLabel()
        self.elevation_hint.setWordWrap(True)
        form.addRow(self.elevation_hint)
        self.seed_spin = QgsSpinBox()
        self.seed_spin.setRange(0, MAX_DOCK_SEED)
        self.seed_spin.setClearValue(0)
        self.seed_spin.setToolTip("Another number paints other texture (fields, trees, rock) over the same map; the "
                                  "same number always gives the same image.")
        form.addRow("Texture seed", self.seed_spin)

    def model_path(self, model_file: str | None, direction: Direction) -> str | None:
        """``model_file`` when one is chosen, else the bundled terrain-aware model when picked, else ``None`` (the
        bundled model of ``direction``)."""
        self.bundled_combo.setEnabled(not model_file)
        if model_file:
            return model_file
        if direction is Direction.LANDCOVER_TO_RGB and self.bundled_combo.currentData() == BUNDLED_TERRAIN:
            return str(bundled_terrain_model_path())
        return None

    def show_needs(self, contract: ModelContract | None) -> None:
        """Say whether the model (``None``: none could be read) needs the elevation."""
        if contract is None or contract.direction is not Direction.LANDCOVER_TO_RGB:
            self.elevation_hint.setText("")
        elif contract.terrain is not None:
            self.elevation_hint.setText("<b>Needed</b>: this model paints relief (hillshade and slopes) from an "
                                        "elevation raster.")
        else:
            self.elevation_hint.setText("Not used: this model is map only.")

    def elevation_path(self, contract: ModelContract | None, model_name: str) -> str | None:
        """The DEM file of the chosen layer (``None``: none chosen).

        Raises:
            InputRasterError: the layer is not a file GDAL can read, or a terrain-aware model has no elevation.
        """
        layer = self.elevation_combo.currentLayer()
        path = elevation_file(layer) if isinstance(layer, QgsRasterLayer) else None
        if path is None and contract is not None and contract.terrain is not None:
            raise InputRasterError(missing_elevation_message(contract, model_name))
        return path
