"""The two Processing algorithms: land cover -> synthetic RGB, and RGB imagery -> land cover.

Both read the layer through a clone of its data provider (made in ``prepareAlgorithm`` on the main thread), run
:func:`lcgan_qgis.job.run_translation` in ``processAlgorithm`` (possibly on a worker thread) with the feedback's
progress and cancel, and style the loaded result in ``postProcessAlgorithm``. Core errors become
``QgsProcessingException`` carrying the core's specific message.

(About 450 lines, past the 400 a module should keep to: the parameters of every run choice, declared and read the
way QGIS's own algorithms do, class constants beside them; the help texts already live in ``help.yaml``.)
"""

from __future__ import annotations

import logging
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from qgis.core import (
    QgsGeometry,
    QgsProcessingAlgorithm,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingOutputNumber,
    QgsProcessingOutputString,
    QgsProcessingParameterBand,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterExtent,
    QgsProcessingParameterFile,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsRasterLayer,
)
from qgis.PyQt.QtCore import QCoreApplication
from qgis.PyQt.QtGui import QIcon

from ...core.choices import (
    BACKEND_LABELS,
    BACKENDS,
    DEVICE_LABELS,
    DEVICES,
    PRECISION_LABELS,
    PRECISIONS,
    RADIOMETRY_CHOICES,
    RADIOMETRY_LABELS,
)
from ...core.contract import Direction
from ...core.errors import LcganError
from ...core.job import JobResult, TranslationRequest, run_translation
from ...core.precision import MIN_CLASS_AGREEMENT, MIN_PSNR_DB
from ...core.resampling import GSD_TOLERANCE
from ...core.resources import bundled_terrain_model_path
from ..icons import plugin_icon
from ..layers import direction_misfit, elevation_file, layer_file
from ..qgis_reader import ProviderReader, data_band_count
from ..settings import openvino_cache_dir
from .result_styler import ResultStyler

LOG = logging.getLogger(__name__)
HELP_FILE = Path(__file__).with_name("help.yaml")


@lru_cache(maxsize=1)
def _help_texts() -> dict[str, str]:
    import yaml  # QGIS's Processing reads its own help files with it, so every QGIS has it

    return yaml.safe_load(HELP_FILE.read_text(encoding="utf-8"))


def help_text(algorithm_id: str) -> str:
    """The help of ``algorithm_id`` from :data:`HELP_FILE` (untranslated; ``{tolerance}``, ``{agreement}``,
    ``{psnr}`` and ``{terrain_model}`` not yet filled in)."""
    return _help_texts()[algorithm_id]



class TranslateAlgorithm(QgsProcessingAlgorithm):
    """Shared parameters and run logic; subclasses set the direction and the texts."""

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
    PROVIDER = "PROVIDER"
    RAN_WITH = "RAN_WITH"
    TILES = "TILES"
    SECONDS = "SECONDS"
    ELEVATION = "ELEVATION"
    SUN_AZIMUTH = "SUN_AZIMUTH"
    SUN_ELEVATION = "SUN_ELEVATION"
    ELEVATION_UNIT = "ELEVATION_UNIT"

    DIRECTION: Direction = Direction.LANDCOVER_TO_RGB
    INPUT_LABEL = "Input raster"
    OUTPUT_LABEL = "Output"
    DISPLAY_NAME = ""

    def __init__(self) -> None:
        super().__init__()
        self._reader: ProviderReader | None = None
        self._request: TranslationRequest | None = None
        self._input_name = ""
        self._job: JobResult | None = None
        self._prepare_error = ""

    # -- identity ------------------------------------------------------------------------------------------
    def tr(self, text: str) -> str:
        return QCoreApplication.translate("lcgan", text)

    def createInstance(self) -> TranslateAlgorithm:
        return type(self)()

    def name(self) -> str:
        return self.DIRECTION.value

    def displayName(self) -> str:
        return self.tr(self.DISPLAY_NAME)

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

    def tags(self) -> list[str]:
        return self.tr("cyclegan,gan,land cover,landcover,rgb,imagery,onnx,deep learning").split(",")

    # -- parameters ----------------------------------------------------------------------------------------
    def initAlgorithm(self, config: dict[str, Any] | None = None) -> None:
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, self.tr(self.INPUT_LABEL)))
        self.addParameter(
            QgsProcessingParameterFile(
                self.MODEL, self.tr("Model (.onnx; empty: the bundled model)"),
                behavior=QgsProcessingParameterFile.Behavior.File, extension="onnx", optional=True,
            )
        )
        self._add_band_parameter()
        self._add_terrain_parameters()
        self.addParameter(
            QgsProcessingParameterNumber(
                self.OVERLAP, self.tr("Tile overlap in pixels (empty: the model's recommendation)"),
                type=QgsProcessingParameterNumber.Type.Integer, defaultValue=None, optional=True, minValue=0,
                maxValue=4096,
            )
        )
        self.addParameter(
            QgsProcessingParameterEnum(
                self.DEVICE, self.tr("Device"), options=[self.tr(DEVICE_LABELS[d]) for d in DEVICES],
                defaultValue=DEVICES.index("auto"),
            )
        )
        self.addParameter(
            QgsProcessingParameterEnum(
                self.PRECISION, self.tr("Precision"), options=[self.tr(PRECISION_LABELS[p]) for p in PRECISIONS],
                defaultValue=0,
            )
        )
        backend = QgsProcessingParameterEnum(
            self.BACKEND, self.tr("Inference backend"), options=[self.tr(BACKEND_LABELS[b]) for b in BACKENDS],
            defaultValue=0,
        )
        backend.setFlags(backend.flags() | QgsProcessingParameterDefinition.Flag.FlagAdvanced)
        self.addParameter(backend)
        self.addParameter(
            QgsProcessingParameterNumber(
                self.BATCH, self.tr("Tiles per batch"), type=QgsProcessingParameterNumber.Type.Integer, defaultValue=1,
                minValue=1, maxValue=256,
            )
        )
        self.addParameter(
            QgsProcessingParameterExtent(self.EXTENT, self.tr("Area to translate (empty: the whole layer)"),
                                         optional=True)
        )
        check_gsd = QgsProcessingParameterBoolean(
            self.CHECK_GSD,
            self.tr("Resample to the model's ground sample distance when the pixel size differs by more than "
                    "{0:g} %").format(GSD_TOLERANCE * 100),
            defaultValue=True,
        )
        check_gsd.setFlags(check_gsd.flags() | QgsProcessingParameterDefinition.Flag.FlagAdvanced)
        self.addParameter(check_gsd)
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, self.tr(self.OUTPUT_LABEL)))
        self._add_extra_outputs()
        self.addOutput(QgsProcessingOutputString(self.PROVIDER, self.tr("Execution provider that ran")))
        self.addOutput(QgsProcessingOutputString(self.RAN_WITH, self.tr("Backend and precision that ran")))
        self.addOutput(QgsProcessingOutputNumber(self.TILES, self.tr("Tiles translated")))
        self.addOutput(QgsProcessingOutputNumber(self.SECONDS, self.tr("Seconds")))

    def _add_band_parameter(self) -> None:
        """RGB input only."""

    def _add_extra_outputs(self) -> None:
        """Land-cover output only."""

    def _add_terrain_parameters(self) -> None:
        """Land-cover input only (terrain-aware models)."""

    def _terrain_options(self, parameters: dict[str, Any], context: QgsProcessingContext) -> dict[str, Any]:
        """The request's elevation fields (land-cover input only)."""
        return {}

    # -- run -----------------------------------------------------------------------------------------------
    def prepareAlgorithm(self, parameters: dict[str, Any], context: QgsProcessingContext,
                         feedback: QgsProcessingFeedback) -> bool:
        """Main thread: resolve the layer, clone its provider, validate parameters into a request.

        A problem found here is raised from ``processAlgorithm``: QGIS only logs exceptions raised while preparing,
        and callers of ``processing.run`` deserve the specific message in the exception.
        """
        self._prepare_error = ""
        try:
            self._prepare(parameters, context)
        except QgsProcessingException as exc:
            self._prepare_error = str(exc) if str(exc) else exc.args[0]
        except LcganError as exc:
            self._prepare_error = str(exc)
        return True

    def _prepare(self, parameters: dict[str, Any], context: QgsProcessingContext) -> None:
        layer = self.parameterAsRasterLayer(parameters, self.INPUT, context)
        if layer is None or not layer.isValid():
            raise QgsProcessingException(
                self.tr("The input {0!r} is not a raster layer QGIS can open.").format(parameters.get(self.INPUT))
            )
        self._input_name = layer.name()
        self._check_layer(layer)
        model = self.parameterAsFile(parameters, self.MODEL, context) or None
        device = DEVICES[self.parameterAsEnum(parameters, self.DEVICE, context)]
        overlap = None
        if parameters.get(self.OVERLAP) not in (None, ""):
            overlap = self.parameterAsInt(parameters, self.OVERLAP, context)
        request = TranslationRequest(
            direction=self.DIRECTION,
            output_path=self.parameterAsOutputLayer(parameters, self.OUTPUT, context),
            model_path=model,
            device=device,
            overlap_px=overlap,
            batch_size=self.parameterAsInt(parameters, self.BATCH, context),
            bands=self._bands(parameters, context, layer),
            aoi_wkt=self._aoi_wkt(parameters, context, layer),
            confidence_path=self._confidence_path(parameters, context),
            radiometry_mode=self._radiometry_mode(parameters, context),
            check_gsd=self.parameterAsBoolean(parameters, self.CHECK_GSD, context),
            input_path=layer_file(layer),
            precision=PRECISIONS[self.parameterAsEnum(parameters, self.PRECISION, context)],
            backend=BACKENDS[self.parameterAsEnum(parameters, self.BACKEND, context)],
            cache_dir=openvino_cache_dir(),
            **self._terrain_options(parameters, context),
        )
        self._reader = ProviderReader.from_layer(layer)
        self._request = request

    def _check_layer(self, layer: QgsRasterLayer) -> None:
        """Refuse layers that cannot fit the direction, before any model is loaded (subclasses)."""

    def _bands(self, parameters: dict[str, Any], context: QgsProcessingContext,
               layer: QgsRasterLayer) -> tuple[int, ...] | None:
        return None

    def _confidence_path(self, parameters: dict[str, Any], context: QgsProcessingContext) -> str | None:
        return None

    def _radiometry_mode(self, parameters: dict[str, Any], context: QgsProcessingContext) -> str | None:
        return None

    def _aoi_wkt(self, parameters: dict[str, Any], context: QgsProcessingContext,
                 layer: QgsRasterLayer) -> str | None:
        if parameters.get(self.EXTENT) in (None, ""):
            return None
        extent = self.parameterAsExtent(parameters, self.EXTENT, context, layer.crs())
        if extent.isNull() or extent.isEmpty():
            return None
        if not extent.intersects(layer.extent()):
            raise QgsProcessingException(
                self.tr("The area to translate ({0}) does not overlap layer '{1}' ({2}).").format(
                    extent.toString(3), layer.name(), layer.extent().toString(3)
                )
            )
        return QgsGeometry.fromRect(extent).asWkt()

    def processAlgorithm(self, parameters: dict[str, Any], context: QgsProcessingContext,
                         feedback: QgsProcessingFeedback) -> dict[str, Any]:
        if self._prepare_error:
            raise QgsProcessingException(self._prepare_error)
        if self._request is None or self._reader is None:
            raise QgsProcessingException(self.tr("The algorithm was not prepared (internal error)."))
        feedback = feedback or QgsProcessingFeedback()
        try:
            with self._reader:
                self._job = run_translation(
                    self._request, self._reader,
                    progress=lambda f: feedback.setProgress(100.0 * f),
                    is_canceled=feedback.isCanceled,
                    log=feedback.pushInfo,
                )
        except LcganError as exc:
            raise QgsProcessingException(str(exc)) from None
        finally:
            self._reader = None
        result = self._job.result
        if result.canceled:
            raise QgsProcessingException(self.tr("Canceled: nothing was written."))
        outputs: dict[str, Any] = {
            self.OUTPUT: result.output_path,
            self.PROVIDER: result.provider,
            self.RAN_WITH: f"{result.backend} {result.precision}",
            self.TILES: result.tiles,
            self.SECONDS: result.seconds,
        }
        if self._request.confidence_path:
            outputs[self.CONFIDENCE] = result.confidence_path
        return outputs

    def postProcessAlgorithm(self, context: QgsProcessingContext, feedback: QgsProcessingFeedback) -> dict[str, Any]:
        """Main thread: name, style and group the result layer when Processing loads it."""
        if self._job is not None and self._request is not None:
            output = self._job.result.output_path
            if output and context.willLoadLayerOnCompletion(output):
                details = context.layerToLoadOnCompletionDetails(output)
                details.name = ResultStyler.layer_name(self._input_name, self.DIRECTION)
                details.forceName = True
                details.setPostProcessor(ResultStyler.create(self.DIRECTION, self._job.contract.scheme))
        return {}


class LandcoverToRgb(TranslateAlgorithm):
    """``lcgan:landcover_to_rgb``."""

    DIRECTION = Direction.LANDCOVER_TO_RGB
    INPUT_LABEL = "Land-cover raster (one band of class codes)"
    OUTPUT_LABEL = "Synthetic RGB"
    DISPLAY_NAME = "Land cover to synthetic RGB"

    def _add_terrain_parameters(self) -> None:
        self.addParameter(QgsProcessingParameterRasterLayer(
            self.ELEVATION, self.tr("Elevation (DEM, any CRS; needed by terrain-aware models)"), optional=True))
        for key, label, low, high in (
                (self.SUN_AZIMUTH, "Sun azimuth for the hillshade, degrees clockwise from north (empty: the model's)",
                 0.0, 359.999),
                (self.SUN_ELEVATION, "Sun elevation above the horizon, degrees (empty: the model's)", 0.0, 90.0),
                (self.ELEVATION_UNIT, "Metres per elevation unit, e.g. 0.3048 for feet (empty: the raster's unit, "
                                      "else the model's)", 0.0, 1e6)):
            parameter = QgsProcessingParameterNumber(key, self.tr(label), type=QgsProcessingParameterNumber.Type.Double,
                                                     defaultValue=None, optional=True, minValue=low, maxValue=high)
            parameter.setFlags(parameter.flags() | QgsProcessingParameterDefinition.Flag.FlagAdvanced)
            self.addParameter(parameter)

    def _terrain_options(self, parameters: dict[str, Any], context: QgsProcessingContext) -> dict[str, Any]:
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

    def _check_layer(self, layer: QgsRasterLayer) -> None:
        misfit = direction_misfit(layer, self.DIRECTION)
        if misfit:
            raise QgsProcessingException(misfit)


class RgbToLandcover(TranslateAlgorithm):
    """``lcgan:rgb_to_landcover``."""

    DIRECTION = Direction.RGB_TO_LANDCOVER
    INPUT_LABEL = "Image raster (red, green, blue bands)"
    OUTPUT_LABEL = "Land cover"
    DISPLAY_NAME = "RGB imagery to land cover"

    def _add_band_parameter(self) -> None:
        self.addParameter(
            QgsProcessingParameterBand(
                self.BANDS, self.tr("Red, green and blue bands, in that order (empty: 1, 2, 3)"), None,
                self.INPUT, optional=True, allowMultiple=True,
            )
        )
        self.addParameter(
            QgsProcessingParameterEnum(
                self.RADIOMETRY, self.tr("Radiometry (how pixel values map to the model's range)"),
                options=[self.tr(RADIOMETRY_LABELS[mode]) for mode in RADIOMETRY_CHOICES],
                defaultValue=RADIOMETRY_CHOICES.index(None),
            )
        )

    def _add_extra_outputs(self) -> None:
        self.addParameter(
            QgsProcessingParameterRasterDestination(
                self.CONFIDENCE, self.tr("Confidence (max class probability)"), optional=True,
                createByDefault=False,
            )
        )

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
