"""``lcgan:translate_mosaic``: submit a translation of a large raster to a Dask cluster; load the mosaic when done.

It runs :func:`lcgan_qgis.mosaic.job.run_mosaic` (what ``python -m lcgan_qgis translate-mosaic`` runs) against a given
scheduler address. Processing runs it in a background task, so QGIS stays responsive while the cluster works; the
progress bar counts tiles, Cancel stops the job (the finished tiles stay: running it again resumes), and the VRT is
added to the project, styled like the other lcgan results. Dask is imported only when it runs: without it, the
message says how to install it. There is no local-cluster mode here: worker processes started from inside QGIS
would be QGIS's own executable; start a cluster outside (``dask scheduler`` and ``dask worker``) instead. The help
text is ``translate_mosaic`` in help.yaml. Offered only where Dask's distributed package is installed.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, ClassVar

from qgis.core import (
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingOutputNumber,
    QgsProcessingOutputRasterLayer,
    QgsProcessingOutputString,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterString,
)

from ...core.errors import LcganError
from ...core.run.settings import ModelChoice
from ..requests import run_settings
from ..styling import style_file
from .base import LcganAlgorithm
from .result_styler import ResultStyler


def dask_available() -> bool:
    """Whether Dask's distributed package can be imported (the algorithm is offered only then)."""
    return importlib.util.find_spec("distributed") is not None


class TranslateMosaic(LcganAlgorithm):
    """``lcgan:translate_mosaic``: the model, execution, overlap, elevation and resolution parameters are the
    translation algorithms' own (:class:`.base.LcganAlgorithm`), read into the same request fields."""

    SCHEDULER = "SCHEDULER"
    OUTPUT_FOLDER = "OUTPUT_FOLDER"
    TILE_PX = "TILE_PX"
    THREADS = "THREADS"

    LABELS: ClassVar[dict[str, str]] = {
        **LcganAlgorithm.LABELS, LcganAlgorithm.INPUT: "Input raster (read by GDAL)",
        LcganAlgorithm.CHECK_GSD: "Check the model's resolution", SCHEDULER: "Dask scheduler address",
        TILE_PX: "Super-tile size (px)", THREADS: "Threads per worker", OUTPUT_FOLDER: "Output folder",
    }

    def __init__(self) -> None:
        super().__init__()
        self._styler: tuple[str, str, Any, dict[str, str]] | None = None  # (VRT, layer name, contract, tags)

    def name(self) -> str:
        return "translate_mosaic"

    def displayName(self) -> str:
        return self.tr("Translate on a Dask cluster")

    def tags(self) -> list[str]:
        return self.tr("dask,cluster,distributed,mosaic,cog,vrt,large,country,land cover,rgb").split(",")

    def initAlgorithm(self, config: dict[str, Any] | None = None) -> None:
        label = self.LABELS
        self.add_input(label[self.INPUT], None)
        self.add_model(None, optional=False)
        self.addParameter(QgsProcessingParameterString(self.SCHEDULER, self.tr(label[self.SCHEDULER])))
        self.addParameter(QgsProcessingParameterNumber(
            self.TILE_PX, self.tr(label[self.TILE_PX]), type=QgsProcessingParameterNumber.Type.Integer,
            defaultValue=4096, minValue=64, maxValue=65536))
        self.addParameter(QgsProcessingParameterNumber(
            self.THREADS, self.tr(label[self.THREADS]), type=QgsProcessingParameterNumber.Type.Integer,
            defaultValue=0, minValue=0, maxValue=1024))
        self.add_execution()
        self.add_overlap()
        self.add_elevation()
        self.addParameter(self.flagged(QgsProcessingParameterBoolean(
            self.CHECK_GSD, self.tr(label[self.CHECK_GSD]), defaultValue=True)))
        self.addParameter(QgsProcessingParameterFolderDestination(self.OUTPUT_FOLDER,
                                                                  self.tr(label[self.OUTPUT_FOLDER])))
        self.addOutput(QgsProcessingOutputRasterLayer(self.OUTPUT, self.tr("Mosaic (VRT)")))
        self.addOutput(QgsProcessingOutputString(self.RAN_WITH, self.tr("Backend and precision that ran")))
        self.addOutput(QgsProcessingOutputNumber(self.TILES, self.tr("Super-tiles run")))
        self.addOutput(QgsProcessingOutputNumber(self.SECONDS, self.tr("Seconds")))

    def processAlgorithm(self, parameters: dict[str, Any], context: QgsProcessingContext,
                         feedback: QgsProcessingFeedback) -> dict[str, Any]:
        from ...mosaic.job import run_mosaic
        from ...mosaic.request import Cluster, MosaicRequest

        feedback = feedback or QgsProcessingFeedback()
        source = self.raster_path(parameters, self.INPUT, context, "Input")
        layer = self.parameterAsRasterLayer(parameters, self.INPUT, context)
        if not source or layer is None:
            raise QgsProcessingException(self.tr("Give an input raster layer."))
        scheduler = self.parameterAsString(parameters, self.SCHEDULER, context).strip()
        if not scheduler:
            raise QgsProcessingException(self.tr("Give the address of a running Dask scheduler (e.g. "
                                                 "tcp://host:8786)."))
        overlap = self.optional_int(parameters, self.OVERLAP, context)
        try:
            fields = {"overlap_px": overlap, "check_gsd": self.parameterAsBoolean(parameters, self.CHECK_GSD, context),
                      "threads": self.parameterAsInt(parameters, self.THREADS, context) or None,
                      **self.execution_options(parameters, context), **self.elevation_options(parameters, context)}
            request = MosaicRequest(
                inputs=(source,), output_dir=self.parameterAsString(parameters, self.OUTPUT_FOLDER, context),
                model=ModelChoice(self.model_path(parameters, context)), settings=run_settings(fields),
                cluster=Cluster(scheduler=scheduler, tile_px=self.parameterAsInt(parameters, self.TILE_PX, context)),
                input_name=layer.name(),
            )
            result = run_mosaic(request, lambda done, total: feedback.setProgress(100.0 * done / total),
                                feedback.isCanceled, feedback.pushInfo)
        except LcganError as exc:
            raise QgsProcessingException(str(exc)) from None
        for message in result.messages:
            feedback.pushInfo(message)
        if result.canceled:
            raise QgsProcessingException(self.tr("Canceled: the {0} finished tiles stay in {1}; run again to "
                                                 "resume.").format(result.skipped + result.ran, result.output_dir))
        feedback.pushInfo(self.tr("{0} super-tiles ({1} run, {2} already done) in {3:.1f} s, {4:.3f} Mpx/s.").format(
            result.tiles, result.ran, result.skipped, result.seconds, result.mpx_per_s))
        vrt = str(result.vrt_path)
        name = f"{layer.name()} -> {Path(result.output_dir).name}"
        context.addLayerToLoadOnCompletion(vrt, QgsProcessingContext.LayerDetails(name, context.project(),
                                                                                  self.OUTPUT))
        self._styler = (vrt, name, result.contract, result.tags)
        return {self.OUTPUT: vrt, self.OUTPUT_FOLDER: result.output_dir,
                self.RAN_WITH: f"{result.backend} {result.precision}", self.TILES: result.ran,
                self.SECONDS: result.seconds}

    def postProcessAlgorithm(self, context: QgsProcessingContext, feedback: QgsProcessingFeedback) -> dict[str, Any]:
        """Main thread: save a style and the provenance beside the VRT (it opens styled in any project) and style the
        loaded layer, as the other lcgan results are (the legend lists every class: a mosaic counts none)."""
        if self._styler is None:
            return {}
        vrt, name, contract, tags = self._styler
        try:
            style_file(vrt, name, contract.direction, contract.scheme, tags)
        except LcganError as exc:
            feedback.reportError(str(exc), fatalError=False)
        if context.willLoadLayerOnCompletion(vrt):
            details = context.layerToLoadOnCompletionDetails(vrt)
            details.setPostProcessor(ResultStyler.create(contract.direction, contract.scheme, tags))
        return {}
