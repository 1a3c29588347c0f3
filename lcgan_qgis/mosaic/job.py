"""One mosaic job, run from the client: plan on the whole raster, submit one Dask task per super-tile, journal the
finished tiles, and mosaic them into a VRT.

:func:`run_mosaic` steps:

1. resolve the input (one raster, or a VRT of several) and the model file (the int8 sibling on CPU when present,
   decided here once so that every worker runs the same file), check the resolution against the model's GSD;
2. connect to the scheduler (or start a local cluster) and ask every worker whether it can run lcgan;
3. plan the run on the whole raster exactly as the single-process engine does (:func:`~lcgan_qgis.core.engine.
   plan_run`: band mapping, nodata, radiometry, land-cover pre-scan, the one window grid) and cut it into
   super-tiles (:mod:`.grid`);
4. open the manifest (:mod:`.manifest`): tiles whose line and checksum agree are skipped;
5. submit the other tiles (:func:`~lcgan_qgis.mosaic.tile.run_tile`, Dask ``retries`` for transient errors; a lost
   worker's task is rescheduled by Dask), journal each finished tile, and stop at the first tile that fails for good,
   naming it (the finished tiles stay, so a re-run resumes);
6. write ``mosaic.vrt`` over every tile (``gdal.BuildVRT``) with the scheme's colours and class names.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from osgeo import gdal, osr

from ..core.contract import ModelContract
from ..core.engine import RunPlan, TranslateOptions, plan_run
from ..core.errors import ClusterError, InputRasterError, OptionError, OutputError
from ..core.gdal_io import TEMP_SUFFIX, GdalReader, gdal_call, gdal_errors
from ..core.output import style_output
from ..core.resampling import plan_resolution
from ..core.runtime import int8_sibling, load_model
from .cluster import DEFAULT_TIMEOUT_S, bokeh_available, check_workers, connect, local_layout, task_attempts
from .grid import DEFAULT_TILE_PX, TILES_FOLDER, SuperTile, super_tiles
from .inputs import resolve_input
from .manifest import Manifest, TileRecord, sha256_file
from .tile import ModelSpec, TileFailed, TileJob, run_tile

LOG = logging.getLogger(__name__)

VRT_NAME = "mosaic.vrt"
DEFAULT_RETRIES = 2
POLL_S = 0.2

TileProgress = Callable[[int, int], None]  # (tiles finished by this run, tiles this run has to do)


@dataclass(frozen=True)
class MosaicRequest:
    """What to translate, where to write it, and on which cluster.

    Attributes:
        model_path: the ``.onnx`` model (every worker must be able to read this path).
        inputs: one raster (file, VRT, ``/vsicurl/...``, ``/vsis3/...``), or several, or folders of rasters.
        output_dir: the mosaic's folder (created when missing): ``tiles/*.tif``, ``manifest.jsonl``, ``mosaic.vrt``.
        scheduler: a Dask scheduler address; ``None`` starts a local cluster of ``local_workers`` processes.
        local_workers: worker processes of the local cluster (``None``: cores / 4, at least 1).
        threads_per_worker: onnxruntime threads per worker (``None``: local, cores / workers; remote, the worker's
            Dask thread count).
        tile_px: target super-tile side (edges snap to the window grid, see :mod:`.grid`).
        device, precision: as for :func:`~lcgan_qgis.core.runtime.load_model`; ``precision="auto"`` is resolved here.
        overlap_px, window_px, batch_size, bands, radiometry_mode, aoi_wkt: as in
            :class:`~lcgan_qgis.core.engine.TranslateOptions`.
        check_gsd: refuse an input whose pixel size is more than 10 % off the model's GSD (warp it first).
        retries: extra tries of a tile after an error (a lost worker is handled by Dask on its own).
        timeout_s: how long to wait for the scheduler and for the first worker.
    """

    model_path: str
    inputs: tuple[str, ...]
    output_dir: str
    scheduler: str | None = None
    local_workers: int | None = None
    threads_per_worker: int | None = None
    tile_px: int = DEFAULT_TILE_PX
    device: str = "auto"
    precision: str = "auto"
    overlap_px: int | None = None
    window_px: int | None = None
    batch_size: int = 1
    bands: tuple[int, ...] | None = None
    radiometry_mode: str | None = None
    aoi_wkt: str | None = None
    check_gsd: bool = True
    retries: int = DEFAULT_RETRIES
    timeout_s: float = DEFAULT_TIMEOUT_S


@dataclass(frozen=True)
class MosaicResult:
    """What a mosaic run did. ``vrt_path`` is None when it was cancelled (the finished tiles stay)."""

    vrt_path: str | None
    output_dir: str
    tiles: int  # super-tiles of the mosaic
    ran: int  # run by this call
    skipped: int  # already done (manifest line and checksum agree)
    retries: int | None  # extra attempts: errors retried plus tasks rerun after a worker was lost (None: unknown)
    seconds: float  # the whole call
    run_seconds: float  # from the first tile submitted to the last one finished
    mpx_per_s: float  # pixels of the tiles run / run_seconds
    windows: int  # inference windows run by this call
    workers: int
    dashboard: str | None
    contract: ModelContract  # the model's (styling the VRT as a layer needs its direction and scheme)
    canceled: bool = False
    messages: tuple[str, ...] = ()


def resolve_precision(path: str | Path, device: str, precision: str) -> str:
    """The precision every worker runs, decided once: ``auto`` is int8 when the sibling ``M.int8.onnx`` exists and the
    device is not CUDA (as :func:`~lcgan_qgis.core.runtime.load_model` chooses on CPU), else fp32. A cluster mixing
    GPU and CPU workers under ``device="auto"`` therefore still runs one model file for every tile."""
    if precision == "auto":
        return "int8" if device != "cuda" and int8_sibling(path).is_file() else "fp32"
    return precision


def _metres_per_unit(crs_wkt: str) -> float | None:
    if not crs_wkt:
        return None
    srs = osr.SpatialReference()
    with gdal_errors():
        if srs.ImportFromWkt(crs_wkt) != 0 or not srs.IsProjected():
            return None
    return srs.GetLinearUnits() or None


def job_identity(model_file: Path, model_sha256: str, plan: RunPlan, tile_px: int) -> dict[str, Any]:
    """What makes two runs the same job (the manifest's first line): a re-run resumes only when all of it agrees."""
    info, source = plan.info, plan.input
    return {
        "model": {"file": model_file.name, "sha256": model_sha256},
        "input": {"name": info.name, "width": info.width, "height": info.height, "bands": info.band_count,
                  "dtype": info.dtype, "geotransform": list(info.geotransform),
                  "crs_sha256": hashlib.sha256(info.crs_wkt.encode()).hexdigest()[:16]},
        "plan": {"window": [plan.window_h, plan.window_w], "overlap_px": plan.overlap_px, "bands": list(source.bands),
                 "nodata": [repr(v) for v in source.nodata], "low": list(source.low), "high": list(source.high),
                 "aoi_wkt": plan.aoi_wkt},
        "tile_px": tile_px,
    }


def _check_request(request: MosaicRequest) -> None:
    if not isinstance(request.tile_px, int) or request.tile_px < 64:
        raise OptionError(f"The super-tile size must be an integer >= 64 px, got {request.tile_px!r}.")
    if not isinstance(request.retries, int) or request.retries < 0:
        raise OptionError(f"retries must be an integer >= 0, got {request.retries!r}.")
    if request.scheduler and request.local_workers:
        raise OptionError("Give either a scheduler address or a number of local workers, not both.")
    if request.timeout_s <= 0:
        raise OptionError(f"The timeout must be > 0 s, got {request.timeout_s!r}.")


def _output_folder(path: str) -> Path:
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"The output folder {folder} is a file; give a folder for the mosaic's tiles.")
    try:
        (folder / TILES_FOLDER).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"Cannot create the output folder {folder}: {exc.strerror or exc}") from None
    if not os.access(folder, os.W_OK):
        raise OutputError(f"The output folder {folder} is not writable.")
    return folder


def run_mosaic(request: MosaicRequest, tile_progress: TileProgress | None = None,
               is_canceled: Callable[[], bool] | None = None,
               log: Callable[[str], None] | None = None) -> MosaicResult:
    """Translate ``request.inputs`` into a mosaic of Cloud Optimized GeoTIFFs and a VRT, on a Dask cluster.

    Args:
        request: see :class:`MosaicRequest`.
        tile_progress: called with (tiles finished, tiles to run) after each tile.
        is_canceled: polled while tiles run; when it turns true the tasks are cancelled and the finished tiles kept.
        log: receives one-line messages for the user (plan, cluster, dashboard, each tile).

    Raises:
        ClusterError: Dask missing, no scheduler or workers, a worker without lcgan, or a tile that failed (named).
        InputRasterError, ModelFileError, ContractError, OptionError, OutputError, DeviceError: as for a
            single-process run, naming the file, option or tile.
    """
    started = time.perf_counter()
    say = log or LOG.info
    canceled = is_canceled or (lambda: False)
    _check_request(request)
    precision = resolve_precision(request.model_path, request.device, request.precision)
    with load_model(request.model_path, "cpu", 1, precision) as probe:  # the contract; the file checked up front
        contract, model_file = probe.contract, probe.path
    output_dir = _output_folder(request.output_dir)
    input_path = resolve_input(request.inputs, output_dir)
    options = TranslateOptions(overlap_px=request.overlap_px, batch_size=request.batch_size, bands=request.bands,
                               radiometry_mode=request.radiometry_mode, aoi_wkt=request.aoi_wkt,
                               window_px=request.window_px)
    with GdalReader(input_path) as reader:
        resolution = plan_resolution(reader.info, _metres_per_unit(reader.info.crs_wkt), contract.gsd_m,
                                     check=request.check_gsd)
        if resolution.grid is not None:
            raise InputRasterError(f"{resolution.message} A mosaic job runs on the input's own grid: warp the input "
                                   f"to {contract.gsd_m:g} m pixels first (gdalwarp -tr {contract.gsd_m:g} "
                                   f"{contract.gsd_m:g}), or switch the resolution check off.")
        say(f"Model {model_file.name} ({precision}); input {input_path} ({reader.info.width} x {reader.info.height} "
            "px).")
        layout = None if request.scheduler else local_layout(request.local_workers, request.threads_per_worker)
        with connect(request.scheduler, layout, request.timeout_s) as client:
            workers = check_workers(client, request.timeout_s)
            dashboard = _dashboard(client)
            where = request.scheduler or f"a local cluster of {layout.workers} x {layout.threads_per_worker} threads"
            say(f"Dask: {len(workers)} worker(s) on {where}; dashboard: {dashboard or 'none'}"
                + ("" if request.scheduler or bokeh_available() else " (its pages need bokeh: pip install bokeh)"))
            plan = plan_run(contract, reader, options, canceled)
            if canceled():  # during the land-cover pre-scan: its counts are partial, nothing may run on them
                return MosaicResult(None, str(output_dir), 0, 0, 0, None, time.perf_counter() - started, 0.0, 0.0,
                                    0, len(workers), dashboard, contract, True, ("Cancelled while planning.",))
            tiles = super_tiles(plan.tiling(), request.tile_px)
            sha = sha256_file(model_file)
            manifest = Manifest(output_dir, job_identity(model_file, sha, plan, request.tile_px))
            done = manifest.verified([t.name for t in tiles])
            todo = [t for t in tiles if t.name not in done]
            say(f"{len(tiles)} super-tiles of about {request.tile_px} px: {len(done)} already done, {len(todo)} to "
                "run.")
            threads = request.threads_per_worker or (layout.threads_per_worker if layout else None)
            job = TileJob(ModelSpec(str(request.model_path), sha, request.device, threads, precision), input_path,
                          plan, str(output_dir))
            run_started = time.perf_counter()
            records, retries, was_canceled = _run_tiles(client, job, todo, manifest, request.retries, tile_progress,
                                                        canceled, say, f"{sha[:8]}-{uuid.uuid4().hex[:6]}")
            run_seconds = time.perf_counter() - run_started
    messages = tuple(plan.messages)
    ran_px = sum(t.window.width * t.window.height for t in todo if t.name in records)
    common = dict(output_dir=str(output_dir), tiles=len(tiles), ran=len(records), skipped=len(done),
                  retries=retries, run_seconds=run_seconds, mpx_per_s=ran_px / 1e6 / max(run_seconds, 1e-9),
                  windows=sum(r.windows for r in records.values()), workers=len(workers), dashboard=dashboard,
                  contract=contract, messages=messages)
    if was_canceled:
        return MosaicResult(vrt_path=None, seconds=time.perf_counter() - started, canceled=True, **common)
    _sweep(output_dir / TILES_FOLDER)
    vrt = build_vrt(output_dir, [manifest.records[t.name] for t in tiles], contract)
    return MosaicResult(vrt_path=str(vrt), seconds=time.perf_counter() - started, **common)


def _dashboard(client: Any) -> str | None:
    """The scheduler's dashboard link, when it serves one."""
    services = client.scheduler_info().get("services", {})
    return str(client.dashboard_link) if "dashboard" in services else None


def _run_tiles(client: Any, job: TileJob, todo: list[SuperTile], manifest: Manifest, retries: int,
               tile_progress: TileProgress | None, canceled: Callable[[], bool], say: Callable[[str], None],
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
    by_key = dict(zip(keys, todo, strict=True))
    futures = client.map(run_tile, todo, job=job, key=keys, retries=retries, pure=False)
    pending = as_completed(futures, loop=client.loop)
    try:
        while not pending.is_empty():
            if canceled():
                client.cancel(futures)
                say(f"Cancelled: {len(records)} tile(s) finished in this run stay in {manifest.folder}; run the same "
                    "job again to resume.")
                return records, None, True
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
                        f"failed: {outcome.error}: {outcome.message} The {len(manifest.records)} finished tile(s) stay "
                        f"in {manifest.folder}; fix the cause and run the same job again to resume."
                    )
                manifest.add(outcome)
                records[tile.name] = outcome
                LOG.info("tile %s: %.1f s on %s (%d/%d)", tile.name, outcome.seconds, outcome.worker, len(records),
                         len(todo))
                if tile_progress is not None:
                    tile_progress(len(records), len(todo))
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


def _sweep(folder: Path) -> None:
    """Remove the temporary files of killed or cancelled tasks (every task of the job has ended)."""
    for stale in folder.glob(f".*{TEMP_SUFFIX}*"):
        stale.unlink(missing_ok=True)


class _VrtBands:
    """The VRT dataset seen as :func:`~lcgan_qgis.core.output.style_output` sees a writer (``band(i)``), so the mosaic
    gets the very colours, class names and colour interpretation a single-process output gets."""

    def __init__(self, dataset: gdal.Dataset) -> None:
        self.dataset = dataset

    def band(self, index: int) -> gdal.Band:
        return self.dataset.GetRasterBand(index)


def build_vrt(output_dir: Path, records: list[TileRecord], contract: ModelContract) -> Path:
    """``mosaic.vrt`` over the tiles (paths relative to the folder, so it can be moved), styled like an output.

    Raises:
        OutputError: GDAL cannot write it.
    """
    target = output_dir / VRT_NAME
    fd, tmp = tempfile.mkstemp(prefix=".mosaic.", suffix=".vrt", dir=output_dir)
    os.close(fd)
    try:
        with gdal_errors() as errors:
            dataset = gdal_call(errors, gdal.BuildVRT, tmp, [str(output_dir / r.path) for r in records])
            if dataset is not None:
                style_output(_VrtBands(dataset), contract)  # type: ignore[arg-type]
                dataset.FlushCache()
            dataset = None
        if errors:
            raise OutputError(f"Cannot write {target}: {errors[-1]}")
        Path(tmp + ".aux.xml").unlink(missing_ok=True)
        os.replace(tmp, target)
    except OSError as exc:
        raise OutputError(f"Cannot write {target}: {exc.strerror or exc}") from None
    finally:
        Path(tmp).unlink(missing_ok=True)
    return target
