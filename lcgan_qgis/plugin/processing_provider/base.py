"""What every lcgan Processing algorithm shares (:class:`LcganAlgorithm`): identity (translation context, group,
icon, a fresh instance of its own class), the help texts of :data:`HELP_FILE`, the parameter keys and short labels,
and the parameters more than one algorithm takes, each declared and read in one place: the execution path (device,
precision, backend) and the elevation of terrain-aware models (DEM, sun, vertical unit).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

from qgis.core import (
    QgsProcessingAlgorithm,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
)
from qgis.PyQt.QtCore import QCoreApplication
from qgis.PyQt.QtGui import QIcon

from ...core.choices import BACKEND_LABELS, BACKENDS, DEVICE_LABELS, DEVICES, PRECISION_LABELS, PRECISIONS
from ...core.model.precision import MIN_CLASS_AGREEMENT, MIN_PSNR_DB
from ...core.rasters.resampling import GSD_TOLERANCE
from ...core.resources import bundled_terrain_model_path
from ..icons import plugin_icon
from ..layers import elevation_file
from ..settings import openvino_cache_dir

HELP_FILE = Path(__file__).with_name("help.yaml")


@lru_cache(maxsize=1)
def _help_texts() -> dict[str, str]:
    import yaml  # QGIS's Processing reads its own help files with it, so every QGIS has it

    return yaml.safe_load(HELP_FILE.read_text(encoding="utf-8"))


def help_text(algorithm_id: str) -> str:
    """The help of ``algorithm_id`` from :data:`HELP_FILE` (untranslated; ``{tolerance}``, ``{agreement}``,
    ``{psnr}`` and ``{terrain_model}`` not yet filled in)."""
    return _help_texts()[algorithm_id]


class LcganAlgorithm(QgsProcessingAlgorithm):
    """The identity, help, labels and shared parameters of every lcgan algorithm."""

    INPUT = "INPUT"
    MODEL = "MODEL"
    BANDS = "BANDS"
    RADIOMETRY = "RADIOMETRY"
    OVERLAP = "OVERLAP"
    DEVICE = "DEVICE"
    PRECISION = "PRECISION"
    BACKEND = "BACKEND"
    BATCH = "BATCH"
    EXTENT = "EXTENT"
    CHECK_GSD = "CHECK_GSD"
    OUTPUT = "OUTPUT"
    CONFIDENCE = "CONFIDENCE"
    VECTOR = "VECTOR"
    MIN_AREA = "MIN_AREA"
    ALL_CLASSES = "ALL_CLASSES"
    PROVIDER = "PROVIDER"
    RAN_WITH = "RAN_WITH"
    TILES = "TILES"
    SECONDS = "SECONDS"
    ELEVATION = "ELEVATION"
    SUN_AZIMUTH = "SUN_AZIMUTH"
    SUN_ELEVATION = "SUN_ELEVATION"
    ELEVATION_UNIT = "ELEVATION_UNIT"

    #: Parameter labels stay short (the dialog's default width shows about 40 characters); details are in the help.
    LABELS: ClassVar[dict[str, str]] = {
        MODEL: "Model (.onnx)", BANDS: "Red, green, blue bands", RADIOMETRY: "Radiometry", OVERLAP: "Tile overlap (px)",
        DEVICE: "Device", BATCH: "Tiles per batch", EXTENT: "Area to translate",
        CHECK_GSD: "Resample to the model's resolution", CONFIDENCE: "Confidence", VECTOR: "Land-cover polygons",
        MIN_AREA: "Smallest polygon (px)", ALL_CLASSES: "Legend lists every class", PRECISION: "Precision",
        BACKEND: "Inference backend", ELEVATION: "Elevation (DEM)", SUN_AZIMUTH: "Sun azimuth (°)",
        SUN_ELEVATION: "Sun elevation (°)", ELEVATION_UNIT: "Metres per elevation unit",
    }

    # -- identity ------------------------------------------------------------------------------------------
    def tr(self, text: str) -> str:
        return QCoreApplication.translate("lcgan", text)

    def createInstance(self) -> LcganAlgorithm:
        return type(self)()

    def group(self) -> str:
        return self.tr("Translation")

    def groupId(self) -> str:
        return "translation"

    def icon(self) -> QIcon:
        return plugin_icon()

    def shortHelpString(self) -> str:
        return self.tr(help_text(self.name())).format(tolerance=f"{GSD_TOLERANCE * 100:g} %",
                                                      agreement=f"{MIN_CLASS_AGREEMENT * 100:g} %",
                                                      psnr=f"{MIN_PSNR_DB:g} dB",
                                                      terrain_model=bundled_terrain_model_path())

    # -- shared parameters ---------------------------------------------------------------------------------
    def _add_execution_parameters(self) -> None:
        """Device, precision and (advanced) the inference backend."""
        label = self.LABELS
        self.addParameter(
            QgsProcessingParameterEnum(
                self.DEVICE, self.tr(label[self.DEVICE]), options=[self.tr(DEVICE_LABELS[d]) for d in DEVICES],
                defaultValue=DEVICES.index("auto"),
            )
        )
        self.addParameter(
            QgsProcessingParameterEnum(
                self.PRECISION, self.tr(label[self.PRECISION]),
                options=[self.tr(PRECISION_LABELS[p]) for p in PRECISIONS], defaultValue=0,
            )
        )
        backend = QgsProcessingParameterEnum(
            self.BACKEND, self.tr(label[self.BACKEND]), options=[self.tr(BACKEND_LABELS[b]) for b in BACKENDS],
            defaultValue=0,
        )
        backend.setFlags(backend.flags() | QgsProcessingParameterDefinition.Flag.FlagAdvanced)
        self.addParameter(backend)

    def _execution_options(self, parameters: dict[str, Any], context: QgsProcessingContext) -> dict[str, Any]:
        """The request's ``device``, ``precision``, ``backend`` and ``cache_dir``."""
        return {"device": DEVICES[self.parameterAsEnum(parameters, self.DEVICE, context)],
                "precision": PRECISIONS[self.parameterAsEnum(parameters, self.PRECISION, context)],
                "backend": BACKENDS[self.parameterAsEnum(parameters, self.BACKEND, context)],
                "cache_dir": openvino_cache_dir()}

    def _add_elevation_parameters(self) -> None:
        """The DEM of terrain-aware models and (advanced) the sun and the vertical unit."""
        self.addParameter(QgsProcessingParameterRasterLayer(self.ELEVATION, self.tr(self.LABELS[self.ELEVATION]),
                                                            optional=True))
        for key, low, high in ((self.SUN_AZIMUTH, 0.0, 359.999), (self.SUN_ELEVATION, 0.0, 90.0),
                               (self.ELEVATION_UNIT, 0.0, 1e6)):
            parameter = QgsProcessingParameterNumber(key, self.tr(self.LABELS[key]),
                                                     type=QgsProcessingParameterNumber.Type.Double,
                                                     defaultValue=None, optional=True, minValue=low, maxValue=high)
            parameter.setFlags(parameter.flags() | QgsProcessingParameterDefinition.Flag.FlagAdvanced)
            self.addParameter(parameter)

    def _elevation_options(self, parameters: dict[str, Any], context: QgsProcessingContext) -> dict[str, Any]:
        """The request's ``elevation_path``, ``sun_azimuth_deg``, ``sun_elevation_deg`` and ``elevation_unit_m``."""
        numbers = {field: (self.parameterAsDouble(parameters, key, context)
                           if parameters.get(key) not in (None, "") else None)
                   for field, key in (("sun_azimuth_deg", self.SUN_AZIMUTH), ("sun_elevation_deg", self.SUN_ELEVATION),
                                      ("elevation_unit_m", self.ELEVATION_UNIT))}
        if parameters.get(self.ELEVATION) in (None, ""):
            return {"elevation_path": None, **numbers}
        layer = self.parameterAsRasterLayer(parameters, self.ELEVATION, context)
        if layer is None or not layer.isValid():
            raise QgsProcessingException(self.tr("The elevation {0!r} is not a raster layer QGIS can open.").format(
                parameters.get(self.ELEVATION)))
        return {"elevation_path": elevation_file(layer), **numbers}
