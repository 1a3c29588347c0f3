"""``lcgan:translate_mosaic``: submit a translation of a large raster to a Dask cluster; load the mosaic when done.

It runs :func:`lcgan_qgis.mosaic.job.run_mosaic` (what ``python -m lcgan_qgis translate-mosaic`` runs) against a given
scheduler address. Processing runs it in a background task, so QGIS stays responsive while the cluster works; the
progress bar counts tiles, Cancel stops the job (the finished tiles stay: running it again resumes), and the VRT is
added to the project, styled like the other lcgan results. Dask is imported only when it runs: without it, the
message says how to install it. There is no local-cluster mode here: worker processes started from inside QGIS
would be QGIS's own executable; start a cluster outside (``dask scheduler`` and ``dask worker``) instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qgis.core import (
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingOutputNumber,
    QgsProcessingOutputRasterLayer,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
)

from ...core.errors import LcganError
from .algorithms import DEVICES, LcganAlgorithm, layer_file
from .result_styler import ResultStyler


class TranslateMosaic(LcganAlgorithm):
    """``lcgan:translate_mosaic``."""

    INPUT = "INPUT"
    MODEL = "MODEL"
    SCHEDULER = "SCHEDULER"
    OUTPUT_FOLDER = "OUTPUT_FOLDER"
    TILE_PX = "TILE_PX"
    THREADS = "THREADS"
    DEVICE = "DEVICE"
    OUTPUT = "OUTPUT"
    TILES = "TILES"
    SECONDS = "SECONDS"

    def __init__(self) -> None:
        super().__init__()
        self._styler: tuple[str, Any] | None = None  # (VRT path, contract) once the run is done

    def name(self) -> str:
        return "translate_mosaic"

    def displayName(self) -> str:
        return self.tr("Translate a large raster on a Dask cluster")

    def tags(self) -> list[str]:
        return self.tr("dask,cluster,distributed,mosaic,cog,vrt,large,country,land cover,rgb").split(",")

    def shortHelpString(self) -> str:
        return self.tr(
            "Translates a raster of any size (e.g. a country's land cover) on a Dask cluster, with the same pixels as "
            "the other lcgan algorithms would write, into a folder of Cloud Optimized GeoTIFF tiles and a VRT, which "
            "is added to the project when the job is done.\n\n"
            "Input: a raster layer read by GDAL (a file, a VRT, /vsicurl/ or /vsis3/); every worker must be able to "
            "read the same path, the model file and the output folder (a shared file system).\n"
            "Scheduler: the address of a running Dask scheduler, e.g. tcp://10.0.0.5:8786 (start one with "
            "`dask scheduler` and workers with `dask worker ADDRESS --nthreads 4`; or on SLURM with dask-jobqueue).\n"
            "Super-tile size: pixels per side of each task's tile (edges follow the inference window grid).\n"
            "Threads per worker: onnxruntime threads of each worker (0: the worker's own thread count).\n\n"
            "Cancel stops the job; the finished tiles stay, and running the algorithm again on the same folder "
            "resumes it. Needs Dask's distributed package in QGIS's Python: "
            "python -m pip install \"dask[distributed]\". See docs/mosaic.md."
        )

    def initAlgorithm(self, config: dict[str, Any] | None = None) -> None:
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, self.tr("Input raster (read by GDAL)")))
        self.addParameter(QgsProcessingParameterFile(self.MODEL, self.tr("Model (.onnx)"),
                                                     behavior=QgsProcessingParameterFile.Behavior.File,
                                                     extension="onnx"))
        self.addParameter(QgsProcessingParameterString(self.SCHEDULER,
                                                       self.tr("Dask scheduler address (e.g. tcp://host:8786)")))
        self.addParameter(QgsProcessingParameterNumber(
            self.TILE_PX, self.tr("Super-tile size in pixels"), type=QgsProcessingParameterNumber.Type.Integer,
            defaultValue=4096, minValue=64, maxValue=65536))
        self.addParameter(QgsProcessingParameterNumber(
            self.THREADS, self.tr("Threads per worker (0: the worker's)"),
            type=QgsProcessingParameterNumber.Type.Integer, defaultValue=0, minValue=0, maxValue=1024))
        self.addParameter(QgsProcessingParameterEnum(
            self.DEVICE, self.tr("Device"), options=[self.tr("auto (GPU when usable)"), self.tr("CPU"),
                                                     self.tr("CUDA GPU")], defaultValue=0))
        self.addParameter(QgsProcessingParameterFolderDestination(self.OUTPUT_FOLDER,
                                                                  self.tr("Output folder (tiles, manifest, VRT)")))
        self.addOutput(QgsProcessingOutputRasterLayer(self.OUTPUT, self.tr("Mosaic (VRT)")))
        self.addOutput(QgsProcessingOutputNumber(self.TILES, self.tr("Super-tiles run")))
        self.addOutput(QgsProcessingOutputNumber(self.SECONDS, self.tr("Seconds")))

    def processAlgorithm(self, parameters: dict[str, Any], context: QgsProcessingContext,
                         feedback: QgsProcessingFeedback) -> dict[str, Any]:
        from ...mosaic.job import MosaicRequest, run_mosaic

        feedback = feedback or QgsProcessingFeedback()
        layer = self.parameterAsRasterLayer(parameters, self.INPUT, context)
        source = layer_file(layer) if layer is not None and layer.isValid() else None
        if not source:
            raise QgsProcessingException(self.tr("The input {0!r} is not a raster read by GDAL from a path the "
                                                 "workers can open.").format(parameters.get(self.INPUT)))
        scheduler = self.parameterAsString(parameters, self.SCHEDULER, context).strip()
        if not scheduler:
            raise QgsProcessingException(self.tr("Give the address of a running Dask scheduler (e.g. "
                                                 "tcp://host:8786)."))
        request = MosaicRequest(
            model_path=self.parameterAsFile(parameters, self.MODEL, context), inputs=(source,),
            output_dir=self.parameterAsString(parameters, self.OUTPUT_FOLDER, context), scheduler=scheduler,
            threads_per_worker=self.parameterAsInt(parameters, self.THREADS, context) or None,
            tile_px=self.parameterAsInt(parameters, self.TILE_PX, context),
            device=DEVICES[self.parameterAsEnum(parameters, self.DEVICE, context)],
        )
        try:
            result = run_mosaic(request, lambda done, total: feedback.setProgress(100.0 * done / total),
                                feedback.isCanceled, feedback.pushInfo)
        except LcganError as exc:
            raise QgsProcessingException(str(exc)) from None
        if result.canceled:
            raise QgsProcessingException(self.tr("Canceled: the {0} finished tiles stay in {1}; run again to "
                                                 "resume.").format(result.skipped + result.ran, result.output_dir))
        feedback.pushInfo(self.tr("{0} super-tiles ({1} run, {2} already done) in {3:.1f} s, {4:.3f} Mpx/s.").format(
            result.tiles, result.ran, result.skipped, result.seconds, result.mpx_per_s))
        vrt = str(result.vrt_path)
        name = f"{layer.name()} -> {Path(result.output_dir).name}"
        context.addLayerToLoadOnCompletion(vrt, QgsProcessingContext.LayerDetails(name, context.project(),
                                                                                  self.OUTPUT))
        self._styler = (vrt, result.contract)
        return {self.OUTPUT: vrt, self.OUTPUT_FOLDER: result.output_dir, self.TILES: result.ran,
                self.SECONDS: result.seconds}

    def postProcessAlgorithm(self, context: QgsProcessingContext, feedback: QgsProcessingFeedback) -> dict[str, Any]:
        """Main thread: style the VRT layer as the other lcgan results are styled."""
        if self._styler is not None:
            vrt, contract = self._styler
            if context.willLoadLayerOnCompletion(vrt):
                details = context.layerToLoadOnCompletionDetails(vrt)
                details.setPostProcessor(ResultStyler.create(contract.direction, contract.scheme))
        return {}
