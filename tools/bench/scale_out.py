"""The scale-out row: the Dask mosaic path (:mod:`lcgan_qgis.mosaic`) on 1 and 2 local workers against the
single-process engine, on the same raster and model, in one run; and the contiguous-US estimate it implies.

Measured: wall time and Mpx/s of each; the 2-worker / 1-worker ratio (on a 2-core machine, 1 worker x 2 threads vs
2 workers x 1 thread: no extra cores, so the ratio shows the cost of the split, not a speed-up); the distributed
path's overhead on one worker against the engine (wall time of the tile phase, and per inference window, since each
super-tile edge runs one window column or row twice); that both wrote the same pixels.

The big runs last minutes each, one after the other, and a shared machine's load drifts between them. The per-tile
overhead of the distributed machinery (task, worker process, COG copy, checksum, manifest) is therefore also measured
on one super-tile of a smaller raster (the same windows as the engine: nothing runs twice), engine and one-worker
mosaic interleaved, as the median of the per-pair ratios.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from .measurements import engine_subprocess
from .measures import load, read, timed

log = logging.getLogger("bench")

#: NLCD for the contiguous US at 30 m (Albers; the 2019 release's grid, about 16 Gpx).
CONUS_PX = (161190, 104424)
WORKER_COUNTS = (1, 8, 64)


def _mosaic_run(model: Path, raster: Path, out: Path, workers: int, threads: int, tile_px: int,
                device: str, scheduler: str | None = None) -> dict[str, Any]:
    """One mosaic run: on a local cluster of its own, or on ``scheduler``'s (its workers already warm)."""
    from lcgan_qgis.core.run.settings import Execution, ModelChoice, RunSettings
    from lcgan_qgis.mosaic.job import run_mosaic
    from lcgan_qgis.mosaic.manifest import MANIFEST_NAME
    from lcgan_qgis.mosaic.request import Cluster, MosaicRequest

    request = MosaicRequest(
        output_dir=str(out),
        inputs=(str(raster),),
        model=ModelChoice(path=str(model)),
        settings=RunSettings(execution=Execution(threads=threads, device=device)),
        cluster=Cluster(scheduler=scheduler, local_workers=None if scheduler else workers, tile_px=tile_px),
    )
    result, timing = timed(lambda: run_mosaic(request, log=lambda line: log.info("%s", line)))
    tiles = [json.loads(line)["tile"] for line in (out / MANIFEST_NAME).read_text().splitlines()[1:]]
    return {"workers": workers, "threads_per_worker": threads, "tiles": result.tiles, "windows": result.windows,
            "wall_s": timing["wall_s"], "tile_phase_s": round(result.run_seconds, 3),
            "mpx_per_s": round(result.mpx_per_s, 4), "retries": result.retries,
            "per_tile_s": sorted(round(t["seconds"], 2) for t in tiles), "load_before": timing["load_before"],
            "load_after": timing["load_after"], "vrt": result.vrt_path}


def conus_estimate(model: Path, tile_px: int, seconds_per_window: float) -> dict[str, Any]:
    """Windows and super-tiles of the contiguous-US NLCD raster with this model's grid, and the hours they take at
    ``seconds_per_window`` per worker, for 1, 8 and 64 workers (tiles are independent: linear scaling assumed)."""
    from lcgan_qgis.core.model.runtime import load_model
    from lcgan_qgis.core.run.settings import DEFAULT_WINDOW_PX
    from lcgan_qgis.core.run.tiling import fit_window, make_tiling
    from lcgan_qgis.mosaic.grid import super_tiles, windows_per_tile

    contract = load_model(model, "cpu", 1, "fp32").contract
    width, height = CONUS_PX
    overlap, multiple = contract.overlap_px, contract.size_multiple_px
    tiling = make_tiling(height, width, fit_window(height, DEFAULT_WINDOW_PX, overlap, multiple),
                         fit_window(width, DEFAULT_WINDOW_PX, overlap, multiple), overlap, multiple)
    tiles = super_tiles(tiling, tile_px)
    windows = sum(windows_per_tile(tiling, t) for t in tiles)
    total_s = windows * seconds_per_window
    return {"raster_px": list(CONUS_PX), "super_tiles": len(tiles), "windows": windows,
            "windows_single_process": tiling.count, "seconds_per_window": round(seconds_per_window, 4),
            "hours": {str(n): round(total_s / n / 3600, 1) for n in WORKER_COUNTS}}


def tile_overhead(model: Path, raster: Path, work: Path, cores: int, pairs: int, device: str) -> dict[str, Any]:
    """Engine and one-worker mosaic (one super-tile: the whole raster) in ``pairs`` interleaved pairs.

    The mosaics run on one LocalCluster (1 worker, all cores) warmed by a first, separately reported run: a worker
    loads its model once for all its tiles (as in any mosaic of more than a few tiles), while the engine's time
    excludes its model load too (``load_s``). The first run's ratio is the cold worker's."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=cores, processes=True, dashboard_address=None) as cluster:
        def pair() -> dict[str, Any]:
            engine = engine_subprocess(model, raster, work / "pair_engine.tif")
            mosaic = _mosaic_run(model, raster, work / "pair_mosaic", 1, cores, 1 << 20, device,
                                 cluster.scheduler_address)
            shutil.rmtree(work / "pair_mosaic", ignore_errors=True)
            return {"engine_s": engine["seconds"], "mosaic_tile_phase_s": mosaic["tile_phase_s"],
                    "mosaic_wall_s": mosaic["wall_s"], "windows": [engine["tiles"], mosaic["windows"]],
                    "ratio": round(mosaic["tile_phase_s"] / engine["seconds"], 3), "load": mosaic["load_before"]}

        cold_ratio = pair()["ratio"]  # the worker's first tile loads and compiles the model
        runs = [pair() for _ in range(pairs)]
    (work / "pair_engine.tif").unlink(missing_ok=True)
    return {"raster": raster.name, "pairs": runs, "median_ratio": float(np.median([r["ratio"] for r in runs])),
            "median_ratio_whole_call": float(np.median([r["mosaic_wall_s"] / r["engine_s"] for r in runs])),
            "cold_worker_ratio": cold_ratio}


def thread_dependence(model: Path, raster: Path, work: Path, cores: int) -> dict[str, Any]:
    """The engine's default path on ``raster`` at 1 thread and at ``cores``: the largest pixel difference.

    OpenVINO splits its sums by thread, so its pixels depend on the count; a mosaic runs one count on every tile
    (:func:`lcgan_qgis.mosaic.job.worker_threads`), and equals the engine run at that count."""
    from lcgan_qgis.core.model.runtime import load_model
    from lcgan_qgis.core.rasters.gdal_io import GdalReader
    from lcgan_qgis.core.run.engine import TranslateOptions, translate

    outputs, path, counts = [], "", sorted({1, cores})
    for threads in counts:
        out = work / f"threads_{threads}.tif"
        with load_model(model, "cpu", threads=threads) as loaded, GdalReader(raster) as reader:
            translate(loaded, reader, out, TranslateOptions())
            path = f"{loaded.backend} {loaded.precision}"
        outputs.append(read(out).astype(np.int16))
        out.unlink(missing_ok=True)
    return {"raster": raster.name, "path": path, "threads": counts,
            "max_abs_diff": int(np.abs(outputs[0] - outputs[-1]).max())}


def scale_out(model: Path, raster: Path, work: Path, tile_px: int = 4096, device: str = "cpu",
              small_raster: Path | None = None, pairs: int = 3) -> dict[str, Any]:
    """The single-process engine, then the mosaic path on 1 worker (all cores) and 2 workers (half each); then the
    per-tile overhead on ``small_raster`` (one super-tile) in interleaved pairs."""
    from lcgan_qgis.core.model.runtime import default_threads

    cores = default_threads()
    single = engine_subprocess(model, raster, work / "scale_single.tif")
    reference = read(work / "scale_single.tif")
    runs = {}
    for name, workers, threads in (("one_worker", 1, cores), ("two_workers", 2, max(1, cores // 2))):
        out = work / f"scale_{name}"
        runs[name] = run = _mosaic_run(model, raster, out, workers, threads, tile_px, device)
        got = read(Path(run.pop("vrt")))
        run["max_abs_diff_vs_single"] = int(np.abs(got.astype(np.int16) - reference.astype(np.int16)).max())
        shutil.rmtree(out, ignore_errors=True)
    (work / "scale_single.tif").unlink(missing_ok=True)
    one, two = runs["one_worker"], runs["two_workers"]
    per_window_single = single["seconds"] / single["tiles"]
    per_window_one = one["tile_phase_s"] / one["windows"]
    return {
        "raster": f"{raster.name} ({reference.shape[2]} x {reference.shape[1]} px)", "model": model.name,
        "tile_px": tile_px, "cores": cores, "device": device,
        "single_process": {"seconds": single["seconds"], "windows": single["tiles"], "mpx_per_s": single["mpx_per_s"],
                           "precision": single["precision"], "load_before": single["load_before"]},
        **runs,
        "ratio_two_vs_one_worker": round(two["mpx_per_s"] / one["mpx_per_s"], 3),
        "overhead_one_worker_vs_single": round(one["tile_phase_s"] / single["seconds"], 3),
        "overhead_one_worker_vs_single_whole_call": round(one["wall_s"] / single["seconds"], 3),
        "windows_ratio": round(one["windows"] / single["tiles"], 3),
        "overhead_per_window": round(per_window_one / per_window_single, 3),
        "per_tile_overhead": tile_overhead(model, small_raster, work, cores, pairs, device) if small_raster else None,
        "thread_dependence": thread_dependence(model, small_raster, work, cores) if small_raster else None,
        "conus_estimate": conus_estimate(model, tile_px, per_window_one),
        "load_at_end": load(),
        "note": (f"{cores} cores shared with other jobs: 2 workers cannot be faster than 1 here (same cores); the "
                 "ratio shows the cost of splitting. Hours assume linear scaling over independent tiles and workers "
                 "like one_worker (all the cores of this machine). A mosaic's pixels equal the engine's run with "
                 "its workers' thread count; two_workers (1 thread each) against the engine on every core differs "
                 "by what thread_dependence measures (OpenVINO splits its sums by thread)."),
    }
