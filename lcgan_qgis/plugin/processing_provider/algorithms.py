"""What the two translation algorithms share (:class:`TranslateAlgorithm`, on :class:`.base.LcganAlgorithm`); each
direction's own parameters are in :mod:`.directions` (land cover -> synthetic RGB, RGB imagery -> land cover).

Both read the layer through a clone of its data provider (made in ``prepareAlgorithm`` on the main thread), run
:func:`lcgan_qgis.job.run_translation` in ``processAlgorithm`` (possibly on a worker thread) with the feedback's
progress and cancel, and style the loaded result in ``postProcessAlgorithm``. Core errors become
``QgsProcessingException`` carrying the core's specific message.
"""

from __future__ import annotations

import logging
from typing import Any

from qgis.core import (
    QgsGeometry,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingOutputNumber,
    QgsProcessingOutputString,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterExtent,
    QgsProcessingParameterFile,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsRasterLayer,
)

from ...core.choices import DIRECTION_LABELS
from ...core.errors import LcganError
from ...core.model.contract import Direction
from ...core.run.job import JobResult, TranslationRequest, run_translation
from ..layers import layer_file, reader_for
from ..qgis_reader import ProviderReader
from ..styling import result_layer_name, style_file
from .base import LcganAlgorithm
from .result_styler import ResultStyler

LOG = logging.getLogger(__name__)
RUNTIME_MISSING = ("onnxruntime cannot be imported ({0}). Install it with the Install button in QGIS's message bar "
                   "(shown when QGIS starts) or in the lcgan dock.")


class TranslateAlgorithm(LcganAlgorithm):
    """Shared parameters and run logic; subclasses set the direction and the texts."""

    DIRECTION: Direction = Direction.LANDCOVER_TO_RGB
    INPUT_LABEL = "Input layer"
    OUTPUT_LABEL = "Output"

    def __init__(self) -> None:
        super().__init__()
        self._reader: ProviderReader | None = None
        self._request: TranslationRequest | None = None
        self._input_name = ""
        self._job: JobResult | None = None
        self._prepare_error = ""
        self._notes: list[str] = []
        self._all_classes = False

    # -- identity ------------------------------------------------------------------------------------------
    def name(self) -> str:
        return self.DIRECTION.value

    def displayName(self) -> str:
        return self.tr(DIRECTION_LABELS[self.DIRECTION])

    def tags(self) -> list[str]:
        return self.tr("cyclegan,gan,land cover,landcover,rgb,imagery,onnx,deep learning").split(",")

    # -- parameters ----------------------------------------------------------------------------------------
    def initAlgorithm(self, config: dict[str, Any] | None = None) -> None:
        label = self.LABELS
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, self.tr(self.INPUT_LABEL)))
        self.addParameter(
            QgsProcessingParameterFile(
                self.MODEL, self.tr(label[self.MODEL]), behavior=QgsProcessingParameterFile.Behavior.File,
                extension="onnx", optional=True,
            )
        )
        self._add_band_parameter()
        self._add_terrain_parameters()
        self.addParameter(
            QgsProcessingParameterNumber(
                self.OVERLAP, self.tr(label[self.OVERLAP]), type=QgsProcessingParameterNumber.Type.Integer,
                defaultValue=None, optional=True, minValue=0, maxValue=4096,
            )
        )
        self._add_execution_parameters()
        self.addParameter(
            QgsProcessingParameterNumber(
                self.BATCH, self.tr(label[self.BATCH]), type=QgsProcessingParameterNumber.Type.Integer,
                defaultValue=1, minValue=1, maxValue=256,
            )
        )
        self.addParameter(QgsProcessingParameterExtent(self.EXTENT, self.tr(label[self.EXTENT]), optional=True))
        check_gsd = QgsProcessingParameterBoolean(self.CHECK_GSD, self.tr(label[self.CHECK_GSD]), defaultValue=True)
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

    def _direction_options(self, parameters: dict[str, Any], context: QgsProcessingContext) -> dict[str, Any]:
        """The request's fields of one direction only: elevation and sun (land-cover input), polygons and the
        legend (land-cover output)."""
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
        except ImportError as exc:
            self._prepare_error = self.tr(RUNTIME_MISSING).format(exc)
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
        overlap = None
        if parameters.get(self.OVERLAP) not in (None, ""):
            overlap = self.parameterAsInt(parameters, self.OVERLAP, context)
        aoi_wkt = self._aoi_wkt(parameters, context, layer)
        self._reader, self._notes = reader_for(layer, aoi_wkt, model, self.DIRECTION)
        request = TranslationRequest(
            direction=self.DIRECTION,
            output_path=self.parameterAsOutputLayer(parameters, self.OUTPUT, context),
            model_path=model,
            overlap_px=overlap,
            batch_size=self.parameterAsInt(parameters, self.BATCH, context),
            bands=self._bands(parameters, context, layer),
            aoi_wkt=aoi_wkt,
            confidence_path=self._confidence_path(parameters, context),
            radiometry_mode=self._radiometry_mode(parameters, context),
            check_gsd=self.parameterAsBoolean(parameters, self.CHECK_GSD, context),
            input_path=layer_file(layer),
            **self._execution_options(parameters, context),
            **self._direction_options(parameters, context),
        )
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
        for note in self._notes:
            feedback.pushInfo(note)
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
        except ImportError as exc:
            raise QgsProcessingException(self.tr(RUNTIME_MISSING).format(exc)) from None
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
        if self._job.vector_path:
            outputs[self.VECTOR] = self._job.vector_path
        return outputs

    def postProcessAlgorithm(self, context: QgsProcessingContext, feedback: QgsProcessingFeedback) -> dict[str, Any]:
        """Main thread: save a style and the provenance beside each result file (so it opens styled in any
        project), and name, style and group the results Processing loads."""
        if self._job is None or self._request is None:
            return {}
        job, present = self._job, self._present_codes()
        outputs = [(job.result.output_path, result_layer_name(self._input_name, self.DIRECTION), self.DIRECTION)]
        if job.result.confidence_path:
            outputs.append((job.result.confidence_path, f"{self._input_name} -> confidence", None))
        for path, name, direction in outputs:
            try:
                style_file(path, name, direction, job.contract.scheme, job.tags, present)
            except LcganError as exc:
                feedback.reportError(str(exc), fatalError=False)
            if path and context.willLoadLayerOnCompletion(path):
                details = context.layerToLoadOnCompletionDetails(path)
                details.name = name
                details.forceName = True
                details.setPostProcessor(ResultStyler.create(direction, job.contract.scheme, job.tags, present))
        return {}

    def _present_codes(self) -> list[int] | None:
        """The codes a land-cover legend lists: those in the result, or every class when asked for."""
        counts = self._job.class_counts if self._job is not None else None
        return None if self._all_classes or counts is None else sorted(counts)
