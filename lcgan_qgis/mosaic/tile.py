"""What a worker runs for one super-tile: :func:`run_tile`. Imports no Dask (it runs in any process).

A worker process keeps one loaded model per model file (:func:`worker_model`), not one per task, and runs one tile
at a time whatever its Dask thread count (the onnxruntime session's intra-op threads are the parallelism; two tiles
at once would only compete for the same cores).

A tile is written atomically: the engine writes a GeoTIFF in the worker's scratch folder, that is copied to a Cloud
Optimized GeoTIFF (tiled, compressed, internal overviews, the provenance tags) under a locked temporary name in the
output folder (:class:`~lcgan_qgis.core.storage.files.AtomicFile`), hashed, and renamed into place. A worker killed at
any point leaves a temporary file at most, never a file under a tile's name; the client removes the temporary files of
dead workers (:func:`~lcgan_qgis.core.storage.files.remove_stale_partials`).

A terrain-aware job's plan travels without its DEM (:meth:`~lcgan_qgis.core.run.engine.RunPlan.portable`): each
task opens the DEM on the whole raster's grid itself (:class:`~lcgan_qgis.core.terrain.elevation.ElevationReader`)
and derives the same terrain channels the client planned.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from osgeo import gdal

from ..core.errors import ContractError, InputRasterError, ModelFileError, OptionError, OutputError
from ..core.model.contract import Direction
from ..core.model.precision import file_digest
from ..core.model.runtime import Model
from ..core.rasters.gdal_io import GdalReader, gdal_call, gdal_errors
from ..core.run.engine import RunPlan, translate_region
from ..core.run.settings import Execution
from ..core.storage.files import SIDECAR_SUFFIX, AtomicFile, scratch_folder
from ..core.terrain.elevation import ElevationReader
from .grid import SuperTile
from .manifest import TileRecord

LOG = logging.getLogger(__name__)

#: Errors that another try cannot mend (bad input, model or options): the tile fails at once, without Dask's retries.
PERMANENT_ERRORS = (InputRasterError, ContractError, OptionError, ModelFileError)
COG_BLOCK_PX = 512


@dataclass(frozen=True)
class ModelSpec:
    """Which model a worker loads: the model as given (every worker must be able to read it), the SHA-256 of the file
    the precision selects (the int8 sibling or the file itself), and how to run it: precision and backend resolved
    by the client (:func:`lcgan_qgis.mosaic.job.resolve_model`), so every tile runs the same path; ``threads``
    ``None``: the worker's Dask thread count."""

    path: str
    sha256: str
    execution: Execution


@dataclass(frozen=True)
class TileJob:
    """What every tile task of one job shares (small and picklable)."""

    model: ModelSpec
    input_path: str
    plan: RunPlan
    output_dir: str


@dataclass(frozen=True)
class TileFailed:
    """A tile that failed for a reason another try cannot mend (returned, not raised, so Dask does not retry)."""

    name: str
    error: str  # the error class's name
    message: str


_models: dict[tuple[str, str, Execution], Model] = {}
_models_lock = threading.Lock()
_run_lock = threading.Lock()
_loads = [0]


def worker_model(spec: ModelSpec, threads: int | None) -> Model:
    """This process's model for ``spec`` (loaded once per process; the file's SHA-256 is checked at loading).

    Raises:
        ModelFileError: the file differs from the one the job was planned with.
    """
    execution = replace(spec.execution, threads=threads)
    key = (spec.path, spec.sha256, execution)
    with _models_lock:
        model = _models.get(key)
        if model is None:
            model = execution.load(spec.path)
            digest = file_digest(model.path)
            if digest != spec.sha256:
                raise ModelFileError(f"{model.path} on this worker differs from the model the job was planned with "
                                     f"(SHA-256 {digest[:12]} vs {spec.sha256[:12]}); give every worker the same file.")
            _models[key] = model
            _loads[0] += 1
            LOG.info("worker %d loaded %s on %s (%s threads)", os.getpid(), model.path.name, model.provider,
                     model.threads)
        return model


def model_loads() -> int:
    """How many models this process has loaded (one per worker process is the design; tests check it)."""
    return _loads[0]


def _worker_context() -> tuple[str, str, int | None]:
    """(worker address, scratch folder, Dask thread count) when running in a Dask worker, else this process's."""
    try:
        from distributed import get_worker

        worker = get_worker()
        return str(worker.address), str(worker.local_directory), int(worker.state.nthreads)
    except (ImportError, ValueError, AttributeError):
        return f"pid {os.getpid()}", tempfile.gettempdir(), None


def cog_options(direction: Direction, threads: int) -> list[str]:
    """COG creation options: DEFLATE; the horizontal predictor for imagery (not for class codes); nearest-neighbour
    overviews for class codes, averaged ones for imagery."""
    options = ["COMPRESS=DEFLATE", f"BLOCKSIZE={COG_BLOCK_PX}", "OVERVIEWS=AUTO", "BIGTIFF=IF_SAFER",
               f"NUM_THREADS={threads}"]
    if direction is Direction.RGB_TO_LANDCOVER:
        options.append("OVERVIEW_RESAMPLING=NEAREST")
    else:
        options += ["PREDICTOR=YES", "OVERVIEW_RESAMPLING=AVERAGE"]
    return options


def write_cog(source: Path, target: Path, direction: Direction, threads: int) -> tuple[str, int]:
    """Copy the GeoTIFF ``source`` (with its dataset metadata) to a COG at ``target`` (through a locked temporary name
    beside it, hashed, then renamed); returns the file's SHA-256 and size.

    Raises:
        OutputError: GDAL cannot write it (the message names the tile's file).
    """
    try:
        with AtomicFile(target) as tmp:
            with gdal_errors() as errors:
                done = gdal_call(errors, gdal.Translate, str(tmp), str(source),
                                 options=gdal.TranslateOptions(format="COG",
                                                               creationOptions=cog_options(direction, threads)))
                if done is not None:
                    done.FlushCache()
                done = None
            Path(f"{tmp}{SIDECAR_SUFFIX}").unlink(missing_ok=True)  # class names live on the mosaic's VRT
            if errors:
                raise OutputError(f"Cannot write the tile {target}: {errors[-1]}")
            return file_digest(tmp), tmp.stat().st_size
    except OSError as exc:
        raise OutputError(f"Cannot write the tile {target}: {exc.strerror or exc}") from None


@contextlib.contextmanager
def _elevation(plan: RunPlan) -> Iterator[ElevationReader | None]:
    """The DEM of a terrain-aware plan, opened on the plan's grid (None for other plans)."""
    if plan.terrain is None:
        yield None
        return
    with ElevationReader(plan.terrain.elevation_path, plan.info) as elevation:
        yield elevation


def run_tile(tile: SuperTile, job: TileJob) -> TileRecord | TileFailed:
    """Translate one super-tile into its COG under ``job.output_dir``; the manifest record of the finished tile.

    Returns :class:`TileFailed` for errors another try cannot mend; raises others (Dask retries those).
    """
    started = time.perf_counter()
    worker, scratch_root, dask_threads = _worker_context()
    try:
        model = worker_model(job.model, job.model.execution.threads or dask_threads)
        target = Path(job.output_dir) / tile.relative_path
        with _run_lock, scratch_folder(Path(scratch_root)) as scratch:
            with GdalReader(job.input_path) as reader, _elevation(job.plan) as elevation:
                if (reader.info.width, reader.info.height) != (job.plan.info.width, job.plan.info.height):
                    raise InputRasterError(
                        f"{job.input_path} is {reader.info.width}x{reader.info.height} px on worker {worker}, but the "
                        f"job was planned on a {job.plan.info.width}x{job.plan.info.height} raster; give every "
                        "worker the same input.")
                plan = job.plan if elevation is None else job.plan.with_elevation(model.contract, elevation)
                part = scratch / f"{tile.name}.tif"
                result = translate_region(model, reader, plan, tile.window, part)
            digest, size = write_cog(part, target, model.contract.direction, model.threads)
    except PERMANENT_ERRORS as exc:
        return TileFailed(tile.name, type(exc).__name__, str(exc))
    w = tile.window
    return TileRecord(name=tile.name, path=tile.relative_path, window=(w.col_off, w.row_off, w.width, w.height),
                      sha256=digest, bytes=size,
                      seconds=round(time.perf_counter() - started, 3), windows=result.tiles, worker=worker)
