"""``lcgan:rgb_to_landcover``: classify RGB imagery into land cover, with optional confidence and polygons."""

from __future__ import annotations

import re
from typing import Any

from qgis.core import (
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingParameterBand,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterVectorDestination,
    QgsRasterLayer,
)

from ...core.choices import RADIOMETRY_CHOICES, RADIOMETRY_LABELS
from ...core.model.contract import Direction
from ..qgis_reader import data_band_count
from .translation import TranslationAlgorithm

MAX_MIN_AREA_PX = 1_000_000


class RgbToLandcover(TranslationAlgorithm):
    """``lcgan:rgb_to_landcover``."""

    DIRECTION = Direction.RGB_TO_LANDCOVER
    REFUSE_MISFITS = False

    def initAlgorithm(self, config: dict[str, Any] | None = None) -> None:
        label = self.LABELS
        self.add_input("Image layer", self.DIRECTION)
        self.add_model(self.DIRECTION)
        self.addParameter(QgsProcessingParameterBand(self.BANDS, self.tr(label[self.BANDS]), None, self.INPUT,
                                                     optional=True, allowMultiple=True))
        self.addParameter(QgsProcessingParameterEnum(
            self.RADIOMETRY, self.tr(label[self.RADIOMETRY]),
            options=[self.tr(RADIOMETRY_LABELS[mode]) for mode in RADIOMETRY_CHOICES],
            defaultValue=RADIOMETRY_CHOICES.index(None)))
        self.add_overlap()
        self.add_execution()
        self.add_batch()
        self.add_area()
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, self.tr("Land cover")))
        self.addParameter(QgsProcessingParameterRasterDestination(
            self.CONFIDENCE, self.tr(label[self.CONFIDENCE]), optional=True, createByDefault=False))
        self.addParameter(QgsProcessingParameterVectorDestination(
            self.VECTOR, self.tr(label[self.VECTOR]), optional=True, createByDefault=False))
        self.addParameter(self.flagged(QgsProcessingParameterNumber(
            self.MIN_AREA, self.tr(label[self.MIN_AREA]), type=QgsProcessingParameterNumber.Type.Integer,
            defaultValue=0, minValue=0, maxValue=MAX_MIN_AREA_PX)))
        self.addParameter(self.flagged(QgsProcessingParameterBoolean(
            self.ALL_CLASSES, self.tr(label[self.ALL_CLASSES]), defaultValue=False)))
        self.add_run_outputs()

    def request_fields(self, parameters: dict[str, Any], context: QgsProcessingContext,
                       layer: QgsRasterLayer) -> dict[str, Any]:
        self._legend_all = self.parameterAsBoolean(parameters, self.ALL_CLASSES, context)
        vector = self.optional_output(parameters, self.VECTOR, context)
        return {
            "output_path": self.parameterAsOutputLayer(parameters, self.OUTPUT, context),
            "model_path": self.model_path(parameters, context),
            "bands": self._bands(parameters, context, layer),
            "radiometry_mode": RADIOMETRY_CHOICES[self.parameterAsEnum(parameters, self.RADIOMETRY, context)],
            "overlap_px": self.optional_int(parameters, self.OVERLAP, context),
            "batch_size": self.parameterAsInt(parameters, self.BATCH, context),
            "aoi_wkt": self.area_wkt(parameters, context, layer),
            "check_gsd": self.parameterAsBoolean(parameters, self.CHECK_GSD, context),
            "confidence_path": self.optional_output(parameters, self.CONFIDENCE, context),
            "vector_path": vector,
            "min_polygon_px": self.parameterAsInt(parameters, self.MIN_AREA, context) if vector else 0,
            **self.execution_options(parameters, context),
        }

    def _bands(self, parameters: dict[str, Any], context: QgsProcessingContext,
               layer: QgsRasterLayer) -> tuple[int, ...] | None:
        raw = parameters.get(self.BANDS)
        if isinstance(raw, str) and re.search(r"[,; ]", raw.strip()):  # "3,2,1" as typed on a command line
            try:
                bands = tuple(int(part) for part in re.split(r"[,; ]+", raw.strip()))
            except ValueError:
                raise QgsProcessingException(
                    self.tr("BANDS must be band numbers such as 3,2,1; got {0!r}.").format(raw)) from None
        else:
            bands = tuple(self.parameterAsInts(parameters, self.BANDS, context) or ())
        if not bands:
            return None
        count = data_band_count(layer.dataProvider())
        missing = [b for b in bands if not 1 <= b <= count]
        if missing:
            raise QgsProcessingException(
                self.tr("Band(s) {0} do not exist in layer '{1}', which has {2} band(s).").format(
                    ", ".join(map(str, missing)), layer.name(), count))
        return bands
