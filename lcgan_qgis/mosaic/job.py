"""One mosaic job, run from the client: plan on the whole raster, submit one Dask task per super-tile, journal the
finished tiles, and mosaic them into a VRT.

:func:`run_mosaic` steps:

1. check the request; resolve the model file (a request without one runs the bundled model of its direction, as
   every lcgan run does) and decide here, once, which backend and precision every worker runs
   (:func:`resolve_model`: the core's rule, :func:`~lcgan_qgis.core.model.precision.plan_paths`), so every tile runs
   the same file on the same path;
2. resolve the input (one raster, or a VRT of several) and take the job's decisions exactly as a single-process run
   does (:func:`~lcgan_qgis.core.run.plan.plan_job`: direction, elevation, resolution policy, provenance tags); a
   raster the policy would resample is refused (every worker must read one grid: warp it first);
3. connect to the scheduler (or start a local cluster) and ask every worker whether it can run lcgan;
4. plan the run on the whole raster as the single-process engine does (:func:`~lcgan_qgis.core.run.engine.plan_run`:
   band mapping, nodata, radiometry, land-cover pre-scan, the DEM's terrain choices, the one window grid) and cut it
   into super-tiles (:mod:`.grid`);
5. open the manifest (:mod:`.manifest`): tiles whose line and checksum agree are skipped;
6. submit the other tiles (:func:`~lcgan_qgis.mosaic.tile.run_tile`, Dask ``retries`` for transient errors; a lost
   worker's task is rescheduled by Dask), journal each finished tile, and stop at the first tile that fails for good,
   naming it (the finished tiles stay, so a re-run resumes);
7. write ``mosaic.vrt`` over every tile (``gdal.BuildVRT``) with the scheme's colours and class names and the
   provenance tags, whole or not at all (:class:`~lcgan_qgis.core.storage.files.AtomicFile`).

:class:`~lcgan_qgis.mosaic.request.MosaicRequest` holds the same
:class:`~lcgan_qgis.core.run.settings.RunSettings` a single-process run holds, so a new run setting reaches the
mosaic's workers with no line here.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..core.errors import Canceled, ClusterError, DeviceError, InputRasterError
from ..core.model.contract import ModelContract
from ..core.model.precision import OPENVINO, Capabilities, file_digest, int8_sibling, plan_paths
from ..core.model.runtime import load_model
from ..core.rasters.gdal_io import GdalReader
from ..core.run.claims import claim_outputs
from ..core.run.engine import RunPlan, TranslateOptions, plan_run
from ..core.run.plan import elevation_on, plan_job
from ..core.run.settings import Execution
from ..core.run.streaming import region_has_data
from ..core.storage.files import remove_stale_partials, stale_partial_messages
from .cluster import bokeh_available, check_workers, connect, local_layout, task_attempts
from .folder import VRT_NAME, build_vrt, check_against_inputs, prepared_folder
from .grid import TILES_FOLDER, SuperTile, super_tiles
from .inputs import expand_inputs, resolve_input
from .manifest import Manifest, TileRecord
from .request import MosaicRequest, MosaicResult
from .tile import ModelSpec, TileFailed, TileJob, run_tile

LOG = logging.getLogger(__name__)

POLL_S = 0.2

TileProgress = Callable[[int, int], None]  # (tiles finished by this run, tiles this run has to do)


@dataclass(frozen=True)
class ResolvedModel:
    """What every worker runs (:func:`resolve_model`): the file loaded, its SHA-256, the backend and precision."""

    model_file: Path
    sha256: str
    backend: str
    precision: str
    contract: ModelContract
    notes: tuple[str, ...] = ()


def resolve_model(path: Path, execution: Execution) -> ResolvedModel:
    """The backend and precision every worker runs, decided once on the client by the core's rule.

    On a CPU (``device`` ``cpu`` or ``auto``) the model is loaded here as a CPU run would load it
    (:func:`~lcgan_qgis.core.model.runtime.load_model`: the fidelity record, OpenVINO where installed, the fallbacks);
    on ``cuda`` the CUDA order of :func:`~lcgan_qgis.core.model.precision.plan_paths` decides (the client need not have
    a GPU). The workers then load exactly that path, so a cluster mixing machines still runs one file for every tile.

    Raises:
        ModelFileError, ContractError, DeviceError: as for :func:`~lcgan_qgis.core.model.runtime.load_model`.
    """
    precision, backend = execution.precision, execution.backend
    if execution.device == "cuda":
        caps = Capabilities(on_cuda=True, openvino_missing="not used for CUDA runs", bf16=False,
                            has_int8=int8_sibling(path).is_file())
        paths, _notes = plan_paths(precision, backend, caps, None, str(path))
        if not paths:
            raise DeviceError(f"Cannot run {path} with precision {precision!r} and backend {backend!r} on CUDA.")
        precision, backend = paths[0].precision, paths[0].backend
    with load_model(path, "cpu", 1, precision, backend, execution.cache_dir) as probe:
        return ResolvedModel(probe.path, file_digest(probe.path), probe.backend, probe.precision, probe.contract,
                         probe.notes)


def worker_threads(execution: ResolvedModel, threads: int | None, nthreads: list[int]) -> int | None:
    """The inference threads of every tile: ``threads`` as asked; for OpenVINO, else the fewest any worker has.

    OpenVINO's CPU kernels split their sums by thread, so its pixels depend on the thread count (docs/mosaic.md says by
    how much); onnxruntime's do not. One count for every tile keeps tiles run on unlike workers from meeting at a seam,
    and makes the mosaic the single-process engine's output with ``--threads`` that count. ``nthreads``: each worker's
    Dask thread count.
    """
    if threads is not None or execution.backend != OPENVINO or not nthreads:
        return threads
    return min(nthreads)


def job_identity(execution: ResolvedModel, plan: RunPlan, tile_px: int, threads: int | None = None) -> dict[str, Any]:
    """What makes two runs the same job (the manifest's first line): a re-run resumes only when all of it agrees.
    (The provenance tags are not part of it: their date is the run's. The thread count is, for OpenVINO runs: see
    :func:`worker_threads`.)"""
    info, source = plan.info, plan.input
    model = {"file": execution.model_file.name, "sha256": execution.sha256, "backend": execution.backend,
             "precision": execution.precision}
    if execution.backend == OPENVINO:
        model["threads"] = threads
    return {
        "model": model,
        "input": {"name": info.name, "width": info.width, "height": info.height, "bands": info.band_count,
                  "dtype": info.dtype, "geotransform": list(info.geotransform),
                  "crs_sha256": hashlib.sha256(info.crs_wkt.encode()).hexdigest()[:16]},
        "plan": {"window": [plan.window_h, plan.window_w], "overlap_px": plan.overlap_px, "bands": list(source.bands),
                 "nodata": [repr(v) for v in source.nodata], "low": list(source.low), "high": list(source.high),
                 "aoi_wkt": plan.aoi_wkt,
                 **({"seed": plan.input.seed} if plan.input.seed else {}),
                 "terrain": None if plan.terrain is None else {k: v if not isinstance(v, tuple) else list(v)
                                                               for k, v in vars(plan.terrain).items()}},
        "tile_px": tile_px,
    }


def run_mosaic(request: MosaicRequest, tile_progress: TileProgress | None = None,
               is_canceled: Callable[[], bool] | None = None,
               log: Callable[[str], None] | None = None) -> MosaicResult:
    """Translate ``request.inputs`` into a mosaic of Cloud Optimized GeoTIFFs and a VRT, on a Dask cluster.

    Args:
        request: see :class:`MosaicRequest`.
        tile_progress: called with (tiles finished, tiles to run) after each tile.
        is_canceled: polled while tiles run; when it turns true the tasks are cancelled and the finished tiles kept.
        log: receives one-line messages for the user (model, plan, cluster, dashboard, each tile).

    Raises:
        ClusterError: Dask missing, no scheduler or workers, a worker without lcgan, or a tile that failed (named).
        InputRasterError, ModelFileError, ContractError, OptionError, OutputError, DeviceError: as for a
            single-process run, naming the file, option or tile.
    """
    started = time.perf_counter()
    log = log or LOG.info
    is_canceled = is_canceled or (lambda: False)
    cluster, settings = request.cluster, request.settings
    model_path = request.model.resolve()
    execution = resolve_model(model_path, settings.execution)
    contract = execution.contract
    log(f"Model {execution.model_file.name} (version {contract.model_version}, {contract.gsd_m:g} m): every worker "
        f"runs {execution.backend} {execution.precision}.")
    for note in execution.notes:
        log(note)
    output_dir = Path(request.output_dir)
    check_against_inputs(output_dir, [*expand_inputs(request.inputs), *filter(None, [settings.terrain.elevation_path])])
    with prepared_folder(output_dir), claim_outputs([str(request.vrt_path)]):  # (a failed run leaves no new folder)
        notes = stale_partial_messages([output_dir / VRT_NAME, output_dir / TILES_FOLDER / VRT_NAME])  # (the folders)
        input_path = resolve_input(request.inputs, output_dir)
        with GdalReader(input_path) as reader:
            setup = plan_job(settings, contract, execution.model_file, reader.info, reader.metres_per_unit, log, log,
                             request.model.direction, request.input_name)
            if setup.resolution.grid is not None:
                raise InputRasterError(
                    f"{setup.resolution.message} A mosaic job runs on the input's own grid: warp the input to "
                    f"{contract.gsd_m:g} m pixels first (gdalwarp -tr {contract.gsd_m:g} {contract.gsd_m:g}), or "
                    "switch the resolution check off.")
            log(f"Input {input_path} ({reader.info.width} x {reader.info.height} px).")
            threads_asked = settings.execution.threads
            layout = None if cluster.scheduler else local_layout(cluster.local_workers, threads_asked)
            with connect(cluster.scheduler, layout, cluster.timeout_s) as client:
                workers = check_workers(client, cluster.timeout_s)
                dashboard = _dashboard(client)
                where = cluster.scheduler or (f"a local cluster of {layout.workers} x {layout.threads_per_worker} "
                                              "threads")
                log(f"Dask: {len(workers)} worker(s) on {where}; dashboard: {dashboard or 'none'}"
                    + ("" if cluster.scheduler or bokeh_available() else " (its pages need bokeh: pip install bokeh)"))
                options = TranslateOptions(settings=setup.settings, tags=tuple(setup.tags.items()),
                                           overviews=False)  # (each tile's COG builds its own)
                try:
                    with elevation_on(setup.elevation_path, reader.info) as elevation:
                        plan = plan_run(contract, reader, options, is_canceled, elevation).portable()
                except Canceled:
                    plan = None
                if plan is None or is_canceled():  # during the pre-scans: their counts are partial, nothing may run
                    return MosaicResult(
                        vrt_path=None, output_dir=str(output_dir), tiles=0, ran=0, skipped=0, retries=None,
                        seconds=time.perf_counter() - started, run_seconds=0.0, mpx_per_s=0.0, windows=0,
                        workers=len(workers), dashboard=dashboard, contract=contract, canceled=True,
                        messages=(*notes, "Cancelled while planning."), tags=setup.tags, backend=execution.backend,
                        precision=execution.precision)
                tiles = [t for t in super_tiles(plan.tiling(), cluster.tile_px)  # (a tile without data: no task)
                         if region_has_data(reader, t.window, plan.input, contract)]
                asked = threads_asked or (layout.threads_per_worker if layout else None)
                threads = worker_threads(execution, asked, [int(w["nthreads"]) for w in
                                                            client.scheduler_info()["workers"].values()])
                if execution.backend == OPENVINO:
                    log(f"OpenVINO's pixels depend on the thread count: every tile runs {threads} thread(s), as "
                        f"`translate --threads {threads}` would.")
                manifest = Manifest(output_dir, job_identity(execution, plan, cluster.tile_px, threads))
                done = manifest.verified([t.name for t in tiles])
                todo = [t for t in tiles if t.name not in done]
                log(f"{len(tiles)} super-tiles of about {cluster.tile_px} px: {len(done)} already done, {len(todo)} "
                    "to run.")
                spec = ModelSpec(str(model_path), execution.sha256,
                                 replace(settings.execution, threads=threads, precision=execution.precision,
                                         backend=execution.backend))
                job = TileJob(spec, input_path, plan, str(output_dir))
                run_started = time.perf_counter()
                records, retries, was_canceled = _run_tiles(client, job, todo, manifest, cluster.retries,
                                                            tile_progress, is_canceled, log,
                                                            f"{execution.sha256[:8]}-{uuid.uuid4().hex[:6]}")
                run_seconds = time.perf_counter() - run_started
        messages = (*notes, *plan.messages)
        ran_px = sum(t.window.width * t.window.height for t in todo if t.name in records)
        common = dict(output_dir=str(output_dir), tiles=len(tiles), ran=len(records), skipped=len(done),
                      retries=retries, run_seconds=run_seconds, mpx_per_s=ran_px / 1e6 / max(run_seconds, 1e-9),
                      windows=sum(r.windows for r in records.values()), workers=len(workers), dashboard=dashboard,
                      contract=contract, messages=messages, tags=setup.tags, backend=execution.backend,
                      precision=execution.precision)
        if was_canceled:
            return MosaicResult(vrt_path=None, seconds=time.perf_counter() - started, canceled=True, **common)
        remove_stale_partials(output_dir / TILES_FOLDER)
        vrt = build_vrt(output_dir, [manifest.records[t.name] for t in tiles], contract, setup.tags, plan.info)
    return MosaicResult(vrt_path=str(vrt), seconds=time.perf_counter() - started, **common)


def _dashboard(client: Any) -> str | None:
    """The scheduler's dashboard link, when it serves one."""
    services = client.scheduler_info().get("services", {})
    return str(client.dashboard_link) if "dashboard" in services else None


def _run_tiles(client: Any, job: TileJob, todo: list[SuperTile], manifest: Manifest, retries: int,
               tile_progress: TileProgress | None, canceled: Callable[[], bool], log: Callable[[str], None],
               job_key: str) -> tuple[dict[str, TileRecord], int | None, bool]:
    """Submit ``todo`` and journal each finished tile; returns (records of this run, extra attempts, cancelled).

    Raises:
        ClusterError: the first tile that failed for good (named; the tiles finished so far stay journalled).
    """
    from distributed import as_completed

    records: dict[str, TileRecord] = {}
    if not todo:
        return records, 0, False
    # a key per run, not per job: a re-run right after a cancel must not meet the cancelled run's tasks
    keys = [f"lcgan-{job_key}-{t.name}" for t in todo]
    by_key = dict(zip(keys, todo))
    futures = client.map(run_tile, todo, job=job, key=keys, retries=retries, pure=False)
    pending = as_completed(futures, loop=client.loop)
    try:
        def cancel() -> tuple[dict[str, TileRecord], None, bool]:
            client.cancel(futures)
            log(f"Cancelled: {len(records)} tile(s) finished in this run stay in {manifest.folder}; run the same "
                "job again to resume.")
            return records, None, True

        while not pending.is_empty():
            if canceled():
                return cancel()
            if not pending.has_ready():
                time.sleep(POLL_S)
                continue
            for future in pending.next_batch(block=False):
                tile = by_key[future.key]
                outcome = _outcome(future, tile)
                if isinstance(outcome, TileFailed):
                    client.cancel(futures)
                    w = tile.window
                    raise ClusterError(
                        f"Tile {tile.name} (columns {w.col_off}-{w.col_end}, rows {w.row_off}-{w.row_end}) "
                        f"failed: {outcome.error}: {outcome.message.rstrip('.')}. The {len(manifest.records)} "
                        f"finished tile(s) stay in {manifest.folder}; fix the cause and run the same job again to "
                        "resume."
                    )
                manifest.add(outcome)
                records[tile.name] = outcome
                LOG.info("tile %s: %.1f s on %s (%d/%d)", tile.name, outcome.seconds, outcome.worker, len(records),
                         len(todo))
                if tile_progress is not None:
                    tile_progress(len(records), len(todo))
                if canceled():  # at once, not at the end of the batch (its other tiles are not journalled)
                    return cancel()
        return records, _count_retries(client, keys, retries), False
    finally:
        del pending
        client.cancel(futures)


def _outcome(future: Any, tile: SuperTile) -> TileRecord | TileFailed:
    """The finished task's record, or why it failed."""
    if future.status == "finished":
        return future.result()
    if future.status == "error":
        exc = future.exception()
        return TileFailed(tile.name, type(exc).__name__, str(exc) or repr(exc))
    return TileFailed(tile.name, "ClusterError", f"its task ended as '{future.status}' (the scheduler lost it)")


def _count_retries(client: Any, keys: list[str], retries: int) -> int | None:
    """Extra attempts the scheduler made (errors retried + workers lost mid-task); None when it cannot tell."""
    try:
        attempts = client.run_on_scheduler(task_attempts, keys)
    except Exception as exc:  # (a scheduler without lcgan importable, or an old one: the count is only reported)
        LOG.info("cannot count retries on the scheduler: %s", exc)
        return None
    return sum(retries - left + lost for left, lost in attempts.values())


