"""The two Processing algorithms: land cover -> synthetic RGB, and RGB imagery -> land cover.

Both read the layer through a clone of its data provider (made in ``prepareAlgorithm`` on the main thread), run
:func:`lcgan_qgis.job.run_translation` in ``processAlgorithm`` (possibly on a worker thread) with the feedback's
progress and cancel, and style the loaded result in ``postProcessAlgorithm``. Core errors become
``QgsProcessingException`` carrying the core's specific message.
"""

from __future__ import annotations

import logging
import re
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

from ...core.contract import Direction
from ...core.errors import LcganError
from ...core.job import JobResult, TranslationRequest, run_translation
from ...core.resampling import GSD_TOLERANCE
from ..icons import plugin_icon
from ..qgis_reader import ProviderReader
from .result_styler import ResultStyler

LOG = logging.getLogger(__name__)

DEVICES = ("auto", "cpu", "cuda")
#: Values of the RADIOMETRY enum, in its order (``None``: the model's own mode).
RADIOMETRY_MODES: tuple[str | None, ...] = (None, "percentile", "fixed")


def layer_file(layer: QgsRasterLayer) -> str | None:
    """The file behind a GDAL layer (its source without ``|option`` suffixes), else ``None``."""
    if layer.providerType() != "gdal":
        return None
    return layer.source().split("|")[0] or None


class LcganAlgorithm(QgsProcessingAlgorithm):
    """What every lcgan algorithm shares: translation context, a fresh instance of its own class, group and icon."""

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


class TranslateAlgorithm(LcganAlgorithm):
    """Shared parameters and run logic; subclasses set the direction and the texts."""

    INPUT = "INPUT"
    MODEL = "MODEL"
    BANDS = "BANDS"
    RADIOMETRY = "RADIOMETRY"
    OVERLAP = "OVERLAP"
    DEVICE = "DEVICE"
    BATCH = "BATCH"
    EXTENT = "EXTENT"
    CHECK_GSD = "CHECK_GSD"
    OUTPUT = "OUTPUT"
    CONFIDENCE = "CONFIDENCE"
    PROVIDER = "PROVIDER"
    TILES = "TILES"
    SECONDS = "SECONDS"

    DIRECTION: Direction = Direction.LANDCOVER_TO_RGB
    INPUT_LABEL = "Input raster"
    OUTPUT_LABEL = "Output"

    def __init__(self) -> None:
        super().__init__()
        self._reader: ProviderReader | None = None
        self._request: TranslationRequest | None = None
        self._input_name = ""
        self._job: JobResult | None = None
        self._prepare_error = ""

    # -- identity ------------------------------------------------------------------------------------------
    def name(self) -> str:
        return self.DIRECTION.value

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
        self.addParameter(
            QgsProcessingParameterNumber(
                self.OVERLAP, self.tr("Tile overlap in pixels (empty: the model's recommendation)"),
                type=QgsProcessingParameterNumber.Type.Integer, defaultValue=None, optional=True, minValue=0,
                maxValue=4096,
            )
        )
        self.addParameter(
            QgsProcessingParameterEnum(
                self.DEVICE, self.tr("Device"), options=[self.tr("auto (GPU when usable)"), self.tr("CPU"),
                                                         self.tr("CUDA GPU")], defaultValue=0,
            )
        )
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
                    "{0:.0%}").format(GSD_TOLERANCE),
            defaultValue=True,
        )
        check_gsd.setFlags(check_gsd.flags() | QgsProcessingParameterDefinition.Flag.FlagAdvanced)
        self.addParameter(check_gsd)
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, self.tr(self.OUTPUT_LABEL)))
        self._add_extra_outputs()
        self.addOutput(QgsProcessingOutputString(self.PROVIDER, self.tr("Execution provider that ran")))
        self.addOutput(QgsProcessingOutputNumber(self.TILES, self.tr("Tiles translated")))
        self.addOutput(QgsProcessingOutputNumber(self.SECONDS, self.tr("Seconds")))

    def _add_band_parameter(self) -> None:
        """RGB input only."""

    def _add_extra_outputs(self) -> None:
        """Land-cover output only."""

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

    def displayName(self) -> str:
        return self.tr("Land cover to synthetic RGB")

    def shortHelpString(self) -> str:
        return self.tr(
            "Translates a land-cover map (one band of class codes, e.g. NLCD) into a synthetic RGB image with a "
            "CycleGAN generator exported to ONNX.\n\n"
            "The raster is processed in overlapping tiles that are blended without seams and streamed to a tiled, "
            "compressed GeoTIFF with the input's CRS, extent and pixel size. Pixels that are nodata in the input "
            "are nodata (0) in the output.\n\n"
            "Model: an lcgan .onnx file (its metadata holds the class scheme, tile size and ground sample "
            "distance); empty uses the bundled model.\n"
            "Tile overlap: pixels shared by neighbouring tiles (empty: the model's recommendation).\n"
            "Device: auto uses a CUDA GPU when onnxruntime-gpu can run on it, else the CPU; the log says which "
            "ran and why.\n"
            "Area to translate: only tiles touching it run; the rest of the output is nodata.\n"
            "Resample (advanced): when the layer's pixel size differs from the model's by more than 10 %, the "
            "layer is translated at the model's resolution and the result resampled back. Layers in degrees are "
            "refused unless this is switched off.\n\n"
            "Every code in the layer must be a class of the model's scheme (or nodata); unknown codes are listed "
            "with their pixel counts."
        )

    def _check_layer(self, layer: QgsRasterLayer) -> None:
        if layer.bandCount() != 1:
            raise QgsProcessingException(
                self.tr("Layer '{0}' has {1} bands; a land-cover raster has one band of class codes. For imagery "
                        "use 'RGB to land cover'.").format(layer.name(), layer.bandCount())
            )


class RgbToLandcover(TranslateAlgorithm):
    """``lcgan:rgb_to_landcover``."""

    DIRECTION = Direction.RGB_TO_LANDCOVER
    INPUT_LABEL = "Image raster (red, green, blue bands)"
    OUTPUT_LABEL = "Land cover"

    def displayName(self) -> str:
        return self.tr("RGB imagery to land cover")

    def shortHelpString(self) -> str:
        return self.tr(
            "Classifies RGB imagery into land cover with a CycleGAN generator exported to ONNX.\n\n"
            "The output is a single-band GeoTIFF of the scheme's class codes (e.g. NLCD 42 = Evergreen Forest) "
            "with a colour table, nodata where the input is nodata, and the input's CRS, extent and pixel size. "
            "It is added to the project with the class names and colours.\n\n"
            "Bands: the layer's bands holding red, green and blue, in that order (empty: 1, 2, 3).\n"
            "Model: an lcgan .onnx file; empty uses the bundled model.\n"
            "Radiometry: how pixel values are mapped to the model's range. 'model default' uses the mode stored in "
            "the model. 'percentile' stretches this raster's own 2-98 % range (right for 8-bit imagery, other "
            "sensors, and the synthetic RGB that 'Land cover to synthetic RGB' writes). 'fixed' reads values in the "
            "training imagery's units (e.g. Landsat 8 digital numbers) and suits only imagery of that sensor and "
            "scaling.\n"
            "Tile overlap, Tiles per batch, Device, Area to translate: as in 'Land cover to synthetic RGB'.\n"
            "Confidence (optional): also writes the winning class's probability (0-1, float32) per pixel.\n"
            "Resample (advanced): when the layer's pixel size differs from the model's by more than 10 %, the "
            "layer is classified at the model's resolution and the result resampled back (nearest neighbour)."
        )

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
                options=[self.tr("model default"),
                         self.tr("percentile (this raster's own range; 8-bit, other sensors, lcgan's synthetic RGB)"),
                         self.tr("fixed (the training imagery's values, e.g. Landsat digital numbers)")],
                defaultValue=0,
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
        missing = [b for b in bands if not 1 <= b <= layer.bandCount()]
        if missing:
            raise QgsProcessingException(
                self.tr("Band(s) {0} do not exist in layer '{1}', which has {2} band(s).").format(
                    ", ".join(map(str, missing)), layer.name(), layer.bandCount()
                )
            )
        return bands

    def _radiometry_mode(self, parameters: dict[str, Any], context: QgsProcessingContext) -> str | None:
        return RADIOMETRY_MODES[self.parameterAsEnum(parameters, self.RADIOMETRY, context)]

    def _confidence_path(self, parameters: dict[str, Any], context: QgsProcessingContext) -> str | None:
        if parameters.get(self.CONFIDENCE) in (None, ""):
            return None
        return self.parameterAsOutputLayer(parameters, self.CONFIDENCE, context) or None
