"""How a translation algorithm runs (:class:`TranslationAlgorithm`); what it asks for is in its own file
(:mod:`.landcover_to_rgb`, :mod:`.rgb_to_landcover`), in ``initAlgorithm`` and ``request_fields``.

The layer is read through a clone of its data provider (made in ``prepareAlgorithm`` on the main thread), the job
runs in ``processAlgorithm`` (possibly on a worker thread) with the feedback's progress and cancel, and the loaded
results are named and styled in ``postProcessAlgorithm``. Core errors become ``QgsProcessingException`` carrying the
core's specific message.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qgis.core import (
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingOutputLayerDefinition,
    QgsRasterLayer,
)

from ...core.choices import DIRECTION_LABELS
from ...core.errors import LcganError
from ...core.model.contract import Direction
from ...core.run.job import JobResult, TranslationRequest, run_translation
from ..layers import direction_misfit, layer_file, reader_for
from ..qgis_reader import ProviderReader
from ..requests import translation_request
from ..styling import result_layer_name, style_file
from .base import LcganAlgorithm
from .result_styler import ResultStyler

RUNTIME_MISSING = ("onnxruntime cannot be imported ({0}). Install it with the Install button in QGIS's message bar "
                   "(shown when QGIS starts) or in the lcgan panel.")


class TranslationAlgorithm(LcganAlgorithm):
    """The run of ``lcgan:landcover_to_rgb`` and ``lcgan:rgb_to_landcover``: subclasses set :attr:`DIRECTION`,
    declare their parameters and read them into the request's fields (:meth:`request_fields`)."""

    DIRECTION: Direction = Direction.LANDCOVER_TO_RGB
    #: Refuse a layer that does not fit before the model loads (imagery leaves it to the engine, whose message
    #: explains a band mapping such as 1,1,1 for a one-band layer).
    REFUSE_MISFITS = True

    def __init__(self) -> None:
        super().__init__()
        self._reader: ProviderReader | None = None
        self._request: TranslationRequest | None = None
        self._input_name = ""
        self._job: JobResult | None = None
        self._prepare_error = ""
        self._notes: list[str] = []
        self._legend_all = False
        self._name = ""

    def name(self) -> str:
        return self.DIRECTION.value

    def displayName(self) -> str:
        return self.tr(DIRECTION_LABELS[self.DIRECTION])

    def tags(self) -> list[str]:
        return self.tr("cyclegan,gan,land cover,landcover,rgb,imagery,onnx,deep learning").split(",")

    def request_fields(self, parameters: dict[str, Any], context: QgsProcessingContext,
                       layer: QgsRasterLayer) -> dict[str, Any]:
        """The request's fields read from this algorithm's own parameters (everything but the reader's)."""
        raise NotImplementedError

    def optional_output(self, parameters: dict[str, Any], key: str, context: QgsProcessingContext) -> str | None:
        """The file of an optional output, ``None`` when it is unset: empty, or a batch row's blank cell (an output
        definition with an empty path, which QGIS would otherwise list as "not correctly generated")."""
        value = parameters.get(key)
        if isinstance(value, QgsProcessingOutputLayerDefinition):
            value = value.sink.staticValue()
        if value in (None, ""):
            return None
        return self.parameterAsOutputLayer(parameters, key, context) or None

    # -- run -----------------------------------------------------------------------------------------------
    def prepareAlgorithm(self, parameters: dict[str, Any], context: QgsProcessingContext,
                         feedback: QgsProcessingFeedback) -> bool:
        """Main thread: resolve the layer, clone its provider, validate parameters into a request.

        A problem found here is raised from ``processAlgorithm``: QGIS only logs exceptions raised while preparing,
        and callers of ``processing.run`` deserve the specific message in the exception.
        """
        self._prepare_error = ""
        try:
            layer = self.input_layer(parameters, context)
            self._input_name = layer.name()
            misfit = direction_misfit(layer, self.DIRECTION) if self.REFUSE_MISFITS else None
            if misfit:
                raise QgsProcessingException(misfit)
            fields = self.request_fields(parameters, context, layer)
            self._reader, self._notes = reader_for(layer, fields.get("aoi_wkt"), fields.get("model_path"),
                                                   self.DIRECTION)
            self._request = translation_request(self.DIRECTION, input_path=layer_file(layer), **fields)
            self._name = result_layer_name(self._input_name, self.DIRECTION, fields.get("model_path"),
                                           fields.get("seed"))
        except QgsProcessingException as exc:
            self._prepare_error = str(exc) if str(exc) else exc.args[0]
        except LcganError as exc:
            self._prepare_error = str(exc)
        except ImportError as exc:
            self._prepare_error = self.tr(RUNTIME_MISSING).format(exc)
        return True

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
                self._job = run_translation(self._request, self._reader,
                                            progress=lambda f: feedback.setProgress(100.0 * f),
                                            is_canceled=feedback.isCanceled, log=feedback.pushInfo)
        except LcganError as exc:
            raise QgsProcessingException(str(exc)) from None
        except ImportError as exc:
            raise QgsProcessingException(self.tr(RUNTIME_MISSING).format(exc)) from None
        finally:
            self._reader = None
        result = self._job.result
        if result.canceled:
            raise QgsProcessingException(self.tr("Canceled: nothing was written."))
        outputs: dict[str, Any] = {self.OUTPUT: result.output_path, self.PROVIDER: result.provider,
                                   self.RAN_WITH: f"{result.backend} {result.precision}", self.TILES: result.tiles,
                                   self.SECONDS: result.seconds}
        if result.confidence_path:
            outputs[self.CONFIDENCE] = result.confidence_path
        if self._job.vector_path:
            outputs[self.VECTOR] = self._job.vector_path
        return outputs

    def postProcessAlgorithm(self, context: QgsProcessingContext, feedback: QgsProcessingFeedback) -> dict[str, Any]:
        """Main thread: save a style and the provenance beside each result file (so it opens styled in any
        project), name, style and group the results Processing loads, and drop from the load list any optional
        output that was not asked for (it would be reported as "not correctly generated")."""
        written = {p for p in (self._job.result.output_path, self._job.result.confidence_path,
                               self._job.vector_path) if p} if self._job is not None else set()
        to_load = context.layersToLoadOnCompletion()
        stale = [path for path in to_load if path not in written and not Path(path).exists()]
        if stale:
            context.setLayersToLoadOnCompletion({k: v for k, v in to_load.items() if k not in stale})
        if self._job is None or self._request is None:
            return {}
        job = self._job
        counts = job.class_counts
        present = None if self._legend_all or counts is None else sorted(counts)
        outputs = [(job.result.output_path, self._name, self.DIRECTION)]
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
