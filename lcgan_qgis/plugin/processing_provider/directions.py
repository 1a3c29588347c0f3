"""The two Processing algorithms, one per direction: what each adds to :class:`.algorithms.TranslateAlgorithm`.

``lcgan:landcover_to_rgb`` takes the elevation and the sun of terrain-aware models; ``lcgan:rgb_to_landcover``
takes the band mapping and the radiometry, and adds the confidence, the polygons and the legend choice.
"""

from __future__ import annotations

import re
from typing import Any

from qgis.core import (
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingParameterBand,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterVectorDestination,
    QgsRasterLayer,
)

from ...core.choices import RADIOMETRY_CHOICES, RADIOMETRY_LABELS
from ...core.model.contract import Direction
from ..layers import direction_misfit
from ..qgis_reader import data_band_count
from .algorithms import TranslateAlgorithm


class LandcoverToRgb(TranslateAlgorithm):
    """``lcgan:landcover_to_rgb``."""

    DIRECTION = Direction.LANDCOVER_TO_RGB
    INPUT_LABEL = "Land-cover layer"
    OUTPUT_LABEL = "Synthetic RGB"

    def _add_terrain_parameters(self) -> None:
        self._add_elevation_parameters()

    def _direction_options(self, parameters: dict[str, Any], context: QgsProcessingContext) -> dict[str, Any]:
        return self._elevation_options(parameters, context)

    def _check_layer(self, layer: QgsRasterLayer) -> None:
        misfit = direction_misfit(layer, self.DIRECTION)
        if misfit:
            raise QgsProcessingException(misfit)


class RgbToLandcover(TranslateAlgorithm):
    """``lcgan:rgb_to_landcover``."""

    DIRECTION = Direction.RGB_TO_LANDCOVER
    INPUT_LABEL = "Image layer"
    OUTPUT_LABEL = "Land cover"

    def _add_band_parameter(self) -> None:
        self.addParameter(
            QgsProcessingParameterBand(
                self.BANDS, self.tr(self.LABELS[self.BANDS]), None, self.INPUT, optional=True, allowMultiple=True,
            )
        )
        self.addParameter(
            QgsProcessingParameterEnum(
                self.RADIOMETRY, self.tr(self.LABELS[self.RADIOMETRY]),
                options=[self.tr(RADIOMETRY_LABELS[mode]) for mode in RADIOMETRY_CHOICES],
                defaultValue=RADIOMETRY_CHOICES.index(None),
            )
        )

    def _add_extra_outputs(self) -> None:
        self.addParameter(
            QgsProcessingParameterRasterDestination(
                self.CONFIDENCE, self.tr(self.LABELS[self.CONFIDENCE]), optional=True, createByDefault=False,
            )
        )
        self.addParameter(
            QgsProcessingParameterVectorDestination(
                self.VECTOR, self.tr(self.LABELS[self.VECTOR]), optional=True, createByDefault=False,
            )
        )
        min_area = QgsProcessingParameterNumber(
            self.MIN_AREA, self.tr(self.LABELS[self.MIN_AREA]), type=QgsProcessingParameterNumber.Type.Integer,
            defaultValue=0, minValue=0, maxValue=1_000_000,
        )
        all_classes = QgsProcessingParameterBoolean(self.ALL_CLASSES, self.tr(self.LABELS[self.ALL_CLASSES]),
                                                    defaultValue=False)
        for parameter in (min_area, all_classes):
            parameter.setFlags(parameter.flags() | QgsProcessingParameterDefinition.Flag.FlagAdvanced)
            self.addParameter(parameter)

    def _direction_options(self, parameters: dict[str, Any], context: QgsProcessingContext) -> dict[str, Any]:
        self._all_classes = self.parameterAsBoolean(parameters, self.ALL_CLASSES, context)
        if parameters.get(self.VECTOR) in (None, ""):
            return {}
        return {"vector_path": self.parameterAsOutputLayer(parameters, self.VECTOR, context) or None,
                "min_polygon_px": self.parameterAsInt(parameters, self.MIN_AREA, context)}

    def _bands(self, parameters: dict[str, Any], context: QgsProcessingContext,
               layer: QgsRasterLayer) -> tuple[int, ...] | None:
        raw = parameters.get(self.BANDS)
        if isinstance(raw, str) and re.search(r"[,; ]", raw.strip()):  # "3,2,1" as typed on a command line
            try:
                bands = tuple(int(part) for part in re.split(r"[,; ]+", raw.strip()))
            except ValueError:
                raise QgsProcessingException(
                    self.tr("BANDS must be band numbers such as 3,2,1; got {0!r}.").format(raw)
                ) from None
        else:
            bands = tuple(self.parameterAsInts(parameters, self.BANDS, context) or ())
        if not bands:
            return None
        count = data_band_count(layer.dataProvider())
        missing = [b for b in bands if not 1 <= b <= count]
        if missing:
            raise QgsProcessingException(
                self.tr("Band(s) {0} do not exist in layer '{1}', which has {2} band(s).").format(
                    ", ".join(map(str, missing)), layer.name(), count
                )
            )
        return bands

    def _radiometry_mode(self, parameters: dict[str, Any], context: QgsProcessingContext) -> str | None:
        return RADIOMETRY_CHOICES[self.parameterAsEnum(parameters, self.RADIOMETRY, context)]

    def _confidence_path(self, parameters: dict[str, Any], context: QgsProcessingContext) -> str | None:
        if parameters.get(self.CONFIDENCE) in (None, ""):
            return None
        return self.parameterAsOutputLayer(parameters, self.CONFIDENCE, context) or None
