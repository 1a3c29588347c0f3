"""What every lcgan Processing algorithm shares (:class:`LcganAlgorithm`), as QGIS's own algorithms share
``QgisAlgorithm``: identity (translation context, group, icon, a fresh instance of its own class), the help texts of
:data:`HELP_FILE`, the parameter keys and short labels, and the declaration and reading of the parameters more than
one algorithm takes (model, tiling, execution path, elevation, area). Each algorithm declares its own parameters, in
order, in its own file.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

from qgis.core import (
    QgsGeometry,
    QgsProcessingAlgorithm,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingOutputString,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterExtent,
    QgsProcessingParameterFile,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
    QgsProject,
    QgsRasterLayer,
)
from qgis.PyQt.QtCore import QCoreApplication
from qgis.PyQt.QtGui import QIcon

from ...core.choices import BACKEND_LABELS, BACKENDS, DEVICE_LABELS, DEVICES, PRECISION_LABELS, PRECISIONS
from ...core.errors import InputRasterError
from ...core.model.contract import Direction
from ...core.model.precision import MIN_CLASS_AGREEMENT
from ...core.rasters.resampling import GSD_TOLERANCE
from ..icons import plugin_icon
from ..layers import fits_direction, raster_file
from ..models import bundled_keywords, model_from_value
from ..settings import openvino_cache_dir

HELP_FILE = Path(__file__).with_name("help.yaml")
#: The MODEL parameter's widget in Processing dialogs: the bundled models in a list, and a file browser.
MODEL_WIDGET = "lcgan_qgis.plugin.processing_provider.model_widget.ModelWidgetWrapper"
#: Bounds shared by every algorithm (and the dock).
MAX_OVERLAP_PX, MAX_BATCH = 4096, 256


@lru_cache(maxsize=1)
def _help_texts() -> dict[str, str]:
    import yaml  # QGIS's Processing reads its own help files with it, so every QGIS has it

    return yaml.safe_load(HELP_FILE.read_text(encoding="utf-8"))


def help_text(algorithm_id: str) -> str:
    """The help of ``algorithm_id`` from :data:`HELP_FILE` (untranslated; ``{tolerance}``, ``{agreement}`` and
    ``{bundled}`` not yet filled in)."""
    return _help_texts()[algorithm_id]


def fitting_layer_id(direction: Direction) -> str | None:
    """The layer a dialog should offer first for ``direction``: the active layer when it fits, else the first
    layer of the project that fits, else none (Processing would otherwise pre-select the active layer, a 1-band DEM
    as "Image layer")."""
    try:
        from qgis.utils import iface
    except ImportError:  # (qgis_process: no desktop)
        iface = None
    active = iface.activeLayer() if iface is not None and hasattr(iface, "activeLayer") else None
    layers = [active] if isinstance(active, QgsRasterLayer) else []
    layers += [lyr for lyr in QgsProject.instance().mapLayers().values() if isinstance(lyr, QgsRasterLayer)]
    return next((lyr.id() for lyr in layers if fits_direction(lyr, direction)), None)


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
    SEED = "SEED"

    #: Parameter labels stay short (the dialog's default width shows about 40 characters); details are in the help.
    LABELS: ClassVar[dict[str, str]] = {
        MODEL: "Model", BANDS: "Red, green, blue bands", RADIOMETRY: "Image values", OVERLAP: "Tile overlap (px)",
        DEVICE: "Device", BATCH: "Tiles per batch", EXTENT: "Area to translate",
        CHECK_GSD: "Resample to the model's resolution", CONFIDENCE: "Confidence", VECTOR: "Land-cover polygons",
        MIN_AREA: "Smallest polygon (px)", ALL_CLASSES: "Legend lists every class", PRECISION: "Speed / precision",
        BACKEND: "Inference library", ELEVATION: "Elevation (DEM)", SUN_AZIMUTH: "Sun azimuth (°)",
        SUN_ELEVATION: "Sun elevation (°)", ELEVATION_UNIT: "Metres per elevation unit", SEED: "Texture seed",
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
                                                      bundled=", ".join(bundled_keywords()))

    def flagged(self, parameter: QgsProcessingParameterDefinition) -> QgsProcessingParameterDefinition:
        """``parameter`` marked advanced (folded under "Advanced parameters")."""
        parameter.setFlags(parameter.flags() | QgsProcessingParameterDefinition.Flag.FlagAdvanced)
        return parameter

    # -- shared parameters, declared ----------------------------------------------------------------------
    def add_input(self, label: str, direction: Direction | None) -> None:
        """The input raster, defaulting to a layer that fits ``direction`` (never one that cannot)."""
        default = fitting_layer_id(direction) if direction is not None else None
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, self.tr(label), defaultValue=default))

    def add_model(self, direction: Direction | None, optional: bool = True) -> None:
        """The model: a bundled one picked from the list (or its keyword, e.g. ``terrain``), or an .onnx file."""
        parameter = QgsProcessingParameterFile(self.MODEL, self.tr(self.LABELS[self.MODEL]),
                                               behavior=QgsProcessingParameterFile.Behavior.File,
                                               optional=optional)  # (no extension: a keyword is a value too)
        parameter.setMetadata({"widget_wrapper": {"class": MODEL_WIDGET},
                               "lcgan_direction": direction.value if direction is not None else ""})
        self.addParameter(parameter)

    def add_overlap(self) -> None:
        """Tile overlap (empty: the model's recommendation)."""
        self.addParameter(QgsProcessingParameterNumber(
            self.OVERLAP, self.tr(self.LABELS[self.OVERLAP]), type=QgsProcessingParameterNumber.Type.Integer,
            defaultValue=None, optional=True, minValue=0, maxValue=MAX_OVERLAP_PX))

    def add_batch(self) -> None:
        """Tiles sent to the model at once."""
        self.addParameter(QgsProcessingParameterNumber(
            self.BATCH, self.tr(self.LABELS[self.BATCH]), type=QgsProcessingParameterNumber.Type.Integer,
            defaultValue=1, minValue=1, maxValue=MAX_BATCH))

    def add_execution(self) -> None:
        """Device, precision and (advanced) the inference backend."""
        self.addParameter(QgsProcessingParameterEnum(
            self.DEVICE, self.tr(self.LABELS[self.DEVICE]), options=[self.tr(DEVICE_LABELS[d]) for d in DEVICES],
            defaultValue=DEVICES.index("auto")))
        self.addParameter(QgsProcessingParameterEnum(
            self.PRECISION, self.tr(self.LABELS[self.PRECISION]),
            options=[self.tr(PRECISION_LABELS[p]) for p in PRECISIONS], defaultValue=0))
        self.addParameter(self.flagged(QgsProcessingParameterEnum(
            self.BACKEND, self.tr(self.LABELS[self.BACKEND]), options=[self.tr(BACKEND_LABELS[b]) for b in BACKENDS],
            defaultValue=0)))

    def add_elevation(self) -> None:
        """The DEM of terrain-aware models and (advanced) the sun and the vertical unit."""
        self.addParameter(QgsProcessingParameterRasterLayer(self.ELEVATION, self.tr(self.LABELS[self.ELEVATION]),
                                                            optional=True))
        for key, low, high in ((self.SUN_AZIMUTH, 0.0, 359.999), (self.SUN_ELEVATION, 0.0, 90.0),
                               (self.ELEVATION_UNIT, 0.0, 1e6)):
            self.addParameter(self.flagged(QgsProcessingParameterNumber(
                key, self.tr(self.LABELS[key]), type=QgsProcessingParameterNumber.Type.Double, defaultValue=None,
                optional=True, minValue=low, maxValue=high)))

    def add_area(self) -> None:
        """The area to translate and (advanced) the resolution check."""
        self.addParameter(QgsProcessingParameterExtent(self.EXTENT, self.tr(self.LABELS[self.EXTENT]), optional=True))
        self.addParameter(self.flagged(QgsProcessingParameterBoolean(
            self.CHECK_GSD, self.tr(self.LABELS[self.CHECK_GSD]), defaultValue=True)))

    def add_run_outputs(self) -> None:
        """What ran, for scripts and models: provider, backend and precision, tiles, seconds."""
        self.addOutput(QgsProcessingOutputString(self.PROVIDER, self.tr("Execution provider that ran")))
        self.addOutput(QgsProcessingOutputString(self.RAN_WITH, self.tr("Backend and precision that ran")))
        self.addOutput(QgsProcessingOutputNumber(self.TILES, self.tr("Tiles translated")))
        self.addOutput(QgsProcessingOutputNumber(self.SECONDS, self.tr("Seconds")))

    def checkParameterValues(self, parameters: dict[str, Any], context: QgsProcessingContext) -> tuple[bool, str]:
        """QGIS's checks, with a bundled model's keyword (``MODEL=terrain``) read as the model's file."""
        model = parameters.get(self.MODEL)
        if isinstance(model, str) and model.strip() and model_from_value(model) != model.strip():
            parameters = {**parameters, self.MODEL: model_from_value(model)}
        return super().checkParameterValues(parameters, context)

    # -- shared parameters, read ---------------------------------------------------------------------------
    def input_layer(self, parameters: dict[str, Any], context: QgsProcessingContext) -> QgsRasterLayer:
        layer = self.parameterAsRasterLayer(parameters, self.INPUT, context)
        if layer is None or not layer.isValid():
            raise QgsProcessingException(
                self.tr("The input {0!r} is not a raster layer QGIS can open.").format(parameters.get(self.INPUT)))
        return layer

    def model_path(self, parameters: dict[str, Any], context: QgsProcessingContext) -> str | None:
        """The model file: a bundled model's keyword becomes its path; empty is ``None`` (the bundled default)."""
        return model_from_value(self.parameterAsString(parameters, self.MODEL, context))

    def optional_int(self, parameters: dict[str, Any], key: str, context: QgsProcessingContext) -> int | None:
        return None if parameters.get(key) in (None, "") else self.parameterAsInt(parameters, key, context)

    def execution_options(self, parameters: dict[str, Any], context: QgsProcessingContext) -> dict[str, Any]:
        """The request's ``device``, ``precision``, ``backend`` and ``cache_dir``."""
        return {"device": DEVICES[self.parameterAsEnum(parameters, self.DEVICE, context)],
                "precision": PRECISIONS[self.parameterAsEnum(parameters, self.PRECISION, context)],
                "backend": BACKENDS[self.parameterAsEnum(parameters, self.BACKEND, context)],
                "cache_dir": openvino_cache_dir()}

    def elevation_options(self, parameters: dict[str, Any], context: QgsProcessingContext) -> dict[str, Any]:
        """The request's ``elevation_path``, ``sun_azimuth_deg``, ``sun_elevation_deg`` and ``elevation_unit_m``."""
        numbers = {field: (self.parameterAsDouble(parameters, key, context)
                           if parameters.get(key) not in (None, "") else None)
                   for field, key in (("sun_azimuth_deg", self.SUN_AZIMUTH), ("sun_elevation_deg", self.SUN_ELEVATION),
                                      ("elevation_unit_m", self.ELEVATION_UNIT))}
        return {"elevation_path": self.elevation_path(parameters, context), **numbers}

    def elevation_path(self, parameters: dict[str, Any], context: QgsProcessingContext) -> str | None:
        """The DEM file of the optional ``ELEVATION`` parameter (``None`` when not given)."""
        return self.raster_path(parameters, self.ELEVATION, context, "Elevation")

    def raster_path(self, parameters: dict[str, Any], key: str, context: QgsProcessingContext,
                    what: str) -> str | None:
        """The GDAL file behind the raster layer parameter ``key`` (``None`` when not given), by
        :func:`~lcgan_qgis.plugin.layers.raster_file`'s one rule; ``what`` names its role in the message."""
        if parameters.get(key) in (None, ""):
            return None
        layer = self.parameterAsRasterLayer(parameters, key, context)
        if layer is None or not layer.isValid():
            raise QgsProcessingException(self.tr("The {0} {1!r} is not a raster layer QGIS can open.").format(
                what.lower(), parameters.get(key)))
        try:
            return raster_file(layer, what)
        except InputRasterError as exc:  # (a web service or memory layer: one line, whichever algorithm asks)
            raise QgsProcessingException(str(exc)) from None

    def area_wkt(self, parameters: dict[str, Any], context: QgsProcessingContext,
                 layer: QgsRasterLayer) -> str | None:
        """The area to translate as WKT in the layer's CRS (``None``: the whole layer)."""
        if parameters.get(self.EXTENT) in (None, ""):
            return None
        extent = self.parameterAsExtent(parameters, self.EXTENT, context, layer.crs())
        if extent.isNull() or extent.isEmpty():
            return None
        if not extent.intersects(layer.extent()):
            raise QgsProcessingException(
                self.tr("The area to translate ({0}) does not overlap layer '{1}' ({2}).").format(
                    extent.toString(3), layer.name(), layer.extent().toString(3)))
        return QgsGeometry.fromRect(extent).asWkt()
