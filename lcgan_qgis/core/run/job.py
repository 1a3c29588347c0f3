"""One translation job for every caller: check the outputs, resolve the model, plan, run the engine, warp the
result back.

The Processing algorithms, the dock's background task, the command line and the benchmark all run
:func:`run_translation`, so they behave the same: one set of output-path rules
(:func:`~lcgan_qgis.core.rasters.sources.check_output_paths`) and one resolution policy
(:func:`~lcgan_qgis.core.rasters.resampling.plan_resolution`: a raster whose pixel size differs from the model's
GSD by more than the tolerance is translated on a grid at the model's GSD and the result warped back onto its own
grid, :mod:`.warp_back`). A reader presents the raster on that grid itself: QGIS's provider reader through provider
resampling, the file reader (:class:`~lcgan_qgis.core.rasters.gdal_io.GdalReader`) through GDAL's resampling
RasterIO, with the same choices and the same pixels.

A mosaic job on a Dask cluster (:func:`lcgan_qgis.mosaic.job.run_mosaic`) takes the same decisions through
:func:`~lcgan_qgis.core.run.plan.plan_job` before it cuts the raster into super-tiles, so no rule exists twice.

Everything here may run on a worker thread: it touches no QGIS layer or project, only the reader and files. Tiles,
blending, streaming and the GeoTIFF writer belong to :func:`lcgan_qgis.core.run.engine.translate`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import Canceled, OptionError
from ..model.contract import Direction
from ..rasters.output import class_counts
from ..rasters.sources import check_output_paths
from ..rasters.vectorize import check_vector_path, polygonize
from .claims import claim_outputs
from .models import read_contract, resolve_model_path
from .plan import elevation_on, plan_job
from .request import GridReader, IsCanceled, JobResult, Log, Progress, TranslationRequest

if TYPE_CHECKING:
    from ..model.runtime import Model

#: The job's module names what a caller of the job needs; each lives in its own module (the names after
#: ``run_translation`` are found here too, so callers written before the split keep working).
__all__ = [
    "JobResult",
    "TranslationRequest",
    "claim_outputs",
    "elevation_on",
    "plan_job",
    "read_contract",
    "resolve_model_path",
    "run_translation",
]

LOG = logging.getLogger(__name__)


def run_translation(request: TranslationRequest, reader: GridReader, progress: Progress | None = None,
                    is_canceled: IsCanceled | None = None, log: Log | None = None,
                    model: Model | None = None, note: Log | None = None) -> JobResult:
    """Translate ``reader``'s raster as ``request`` says; returns the engine's result and the model's contract.

    Args:
        request: the parameters.
        reader: the input raster (:class:`~lcgan_qgis.core.rasters.gdal_io.GdalReader` or
            :class:`~lcgan_qgis.plugin.qgis_reader.ProviderReader`).
        progress: called with the fraction done (0..1).
        is_canceled: polled between tile batches; when it turns true the run stops and writes nothing.
        log: receives one-line messages for the user (model, provider, resolution decisions).
        model: a model the caller has loaded (and keeps: it is not closed here), e.g. to translate many rasters
            with one session; ``request.model`` and ``request.settings.execution`` are then unused.
        note: receives the run's notes (the engine's messages about the input, partial files of killed runs
            removed); default: ``log``.

    Raises:
        LcganError: the core's specific error (model file, contract, input raster, output, device).
    """
    check_output_paths(request.output_path, request.confidence_path, request.input_path, request.overwrite,
                       request.settings.terrain.elevation_path)
    if request.vector_path:
        check_vector_path(request.vector_path)
    with claim_outputs([request.output_path, request.confidence_path, request.vector_path]):
        if model is not None:
            return _run_model(request, reader, model, model.path, progress, is_canceled, log, note)
        model_path = request.model.resolve()
        loaded = request.settings.execution.load(model_path)
        try:
            return _run_model(request, reader, loaded, model_path, progress, is_canceled, log, note)
        finally:
            loaded.close()


def _run_model(request: TranslationRequest, reader: GridReader, model: Model, model_path: Path,
               progress: Progress | None, is_canceled: IsCanceled | None, log: Log | None,
               note: Log | None) -> JobResult:
    """:func:`run_translation` once the outputs are reserved and the model is loaded."""
    from .engine import TranslateOptions, translate_checked
    from .warp_back import translate_resampled

    log = log or LOG.info
    note = note or log
    progress = progress or (lambda _f: None)
    contract = model.contract
    log(f"Model {model_path.name} (version {contract.model_version}, {contract.tile_size_px} px tiles, "
        f"{contract.gsd_m:g} m): {model.summary}.")
    job = plan_job(request.settings, contract, model_path, reader.info, reader.metres_per_unit, log, note,
                   request.model.direction, request.input_name)
    rgb_input = contract.direction is Direction.RGB_TO_LANDCOVER
    if request.vector_path and not rgb_input:
        raise OptionError("Polygons exist only for land-cover output (RGB imagery -> land cover models).")
    tags = job.tags
    options = TranslateOptions(settings=job.settings, confidence_path=request.confidence_path,
                               overwrite=request.overwrite, tags=tuple(tags.items()))
    if job.resolution.grid is None:
        with elevation_on(job.elevation_path, reader.info) as elevation:
            result = translate_checked(model, reader, request.output_path, options, progress, is_canceled,
                                       elevation)
    else:
        result = translate_resampled(model, reader, job.resolution.grid, request.output_path, options, progress,
                                     is_canceled, log, note, job.elevation_path)
    if result.canceled:
        return JobResult(result, contract, tags)
    compiled = f"; OpenVINO compiled in {model.compile_seconds:.1f} s" if model.compile_seconds >= 0.05 else ""
    log(f"{result.tiles} tiles in {result.seconds:.1f} s ({result.mpx_per_s:.2f} Mpx/s{compiled}) with "
        f"{result.backend} {result.precision} on {result.provider}.")
    for message in result.messages:
        note(message)
    if not rgb_input:
        return JobResult(result, contract, tags)
    counts = class_counts(result.output_path)
    if not request.vector_path:
        return JobResult(result, contract, tags, counts)
    try:
        count = polygonize(result.output_path, request.vector_path, contract.scheme, request.min_polygon_px,
                           is_canceled=is_canceled)
    except Canceled:
        log(f"Canceled while polygonizing: the raster {result.output_path} was kept, no polygons were written.")
        return JobResult(result, contract, tags, counts)
    log(f"{count} polygons (patches under {max(request.min_polygon_px, 1)} px merged into their neighbours) -> "
        f"{request.vector_path}.")
    return JobResult(result, contract, tags, counts, request.vector_path, count)
