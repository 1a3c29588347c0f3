"""``lcgan:landcover_to_rgb``: paint synthetic RGB imagery from a land-cover map (and, for terrain-aware models, an
elevation raster), with a seed for the texture."""

from __future__ import annotations

from typing import Any

from qgis.core import (
    QgsProcessingContext,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsRasterLayer,
)

from ...core.model.contract import Direction
from .translation import TranslationAlgorithm

#: The largest seed the dialog offers (the core takes up to 2**63 - 1: command lines and scripts may use more).
MAX_DIALOG_SEED = 2**31 - 1


class LandcoverToRgb(TranslationAlgorithm):
    """``lcgan:landcover_to_rgb``."""

    DIRECTION = Direction.LANDCOVER_TO_RGB

    def initAlgorithm(self, config: dict[str, Any] | None = None) -> None:
        self.add_input("Land-cover layer", self.DIRECTION)
        self.add_model(self.DIRECTION)
        self.add_elevation()
        self.addParameter(QgsProcessingParameterNumber(
            self.SEED, self.tr(self.LABELS[self.SEED]), type=QgsProcessingParameterNumber.Type.Integer,
            defaultValue=0, minValue=0, maxValue=MAX_DIALOG_SEED))
        self.add_overlap()
        self.add_execution()
        self.add_batch()
        self.add_area()
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, self.tr("Synthetic RGB")))
        self.add_run_outputs()

    def request_fields(self, parameters: dict[str, Any], context: QgsProcessingContext,
                       layer: QgsRasterLayer) -> dict[str, Any]:
        return {
            "output_path": self.parameterAsOutputLayer(parameters, self.OUTPUT, context),
            "model_path": self.model_path(parameters, context),
            "seed": self.parameterAsInt(parameters, self.SEED, context),
            "overlap_px": self.optional_int(parameters, self.OVERLAP, context),
            "batch_size": self.parameterAsInt(parameters, self.BATCH, context),
            "aoi_wkt": self.area_wkt(parameters, context, layer),
            "check_gsd": self.parameterAsBoolean(parameters, self.CHECK_GSD, context),
            **self.elevation_options(parameters, context),
            **self.execution_options(parameters, context),
        }
