"""Soak run: many consecutive translations in one QGIS process, measuring resident memory (RSS) after each.

``python -m tests.reliability.soak --runs 50 --warmup 10 --size 768`` starts a headless QgsApplication with the
lcgan Processing provider and cycles through four kinds of run on small rasters with per-pixel models, through
``processing.run``: ``lcgan:landcover_to_rgb``, ``lcgan:rgb_to_landcover`` with a confidence raster, and
``lcgan:rgb_to_landcover`` on 60 m pixels (resampled to the model's 30 m and back); and the dock's
``TranslateTask`` in QGIS's task manager (a worker thread). It prints one JSON object: RSS (median of the first and
of the last ten runs after the warm-up) and its growth, the peak, open file descriptors and GDAL's block cache after
the warm-up and at the end, and the seconds per run. Used by ``test_soak.py``; also handy on its own.

RSS is read after ``gc.collect()`` and glibc's ``malloc_trim``; run with ``MALLOC_MMAP_THRESHOLD_=131072`` (as the
test does) so that glibc keeps every large buffer in its own mapping, returned when freed. Then RSS is live memory,
flat to +-0.5 MB over 100 runs here; with glibc's defaults it swings by +-10 % from run to run with the allocator's
state, which would hide a leak of several MB per run.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import gc
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil
from osgeo import gdal

from lcgan_qgis.core.model.contract import Direction
from lcgan_qgis.core.run.settings import Execution, ModelChoice, RunSettings
from tests.fixtures.onnx_factory import write_pointwise
from tests.fixtures.plugin import image_array, landcover_array, write_raster

try:
    LIBC: ctypes.CDLL | None = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    LIBC.malloc_trim  # noqa: B018 (glibc only)
except (OSError, AttributeError):
    LIBC = None

#: RSS is compared as the median of the first and of the last this many runs after the warm-up (robust to a single
#: odd reading).
SMOOTHING_RUNS = 10


def start_qgis() -> object:
    """A headless QgsApplication with Processing and the lcgan provider; returns the ``processing`` module."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from qgis.core import QgsApplication

    QgsApplication.setPrefixPath("/usr", True)
    app = QgsApplication([], False)
    app.initQgis()
    start_qgis.app = app  # the application lives as long as the process
    sys.path.append("/usr/share/qgis/python/plugins")
    import processing
    from processing.core.Processing import Processing

    from lcgan_qgis.plugin.processing_provider import LcganProvider

    Processing.initialize()
    start_qgis.provider = LcganProvider()
    QgsApplication.processingRegistry().addProvider(start_qgis.provider)
    return processing


def soak(runs: int, warmup: int, size_px: int, folder: Path) -> dict[str, float | int]:
    """``warmup`` + ``runs`` translations; RSS is read after each (bytes -> MB in the result)."""
    processing = start_qgis()
    process = psutil.Process()
    from qgis.core import QgsRasterLayer

    models = {d: write_pointwise(folder / f"{d.value}.onnx", d) for d in Direction}
    landcover = write_raster(folder / "lc.tif", landcover_array(size_px, size_px), nodata=255)
    imagery = write_raster(folder / "rgb.tif", image_array(size_px, size_px), nodata=0)
    coarse = write_raster(folder / "coarse.tif", image_array(size_px // 2, size_px // 2),
                          (300000.0, 60.0, 0.0, 4150000.0, 0.0, -60.0), nodata=0)  # resampled to 30 m and back
    jobs = [("lcgan:landcover_to_rgb", {"INPUT": str(landcover), "MODEL": str(models[Direction.LANDCOVER_TO_RGB])}),
            ("lcgan:rgb_to_landcover", {"INPUT": str(imagery), "MODEL": str(models[Direction.RGB_TO_LANDCOVER]),
                                        "CONFIDENCE": str(folder / "confidence.tif")}),
            ("lcgan:rgb_to_landcover", {"INPUT": str(coarse), "MODEL": str(models[Direction.RGB_TO_LANDCOVER])})]
    layer = QgsRasterLayer(str(landcover), "soak")
    rss: list[int] = []
    started = 0.0
    state: dict[str, float] = {}
    for i in range(warmup + runs):
        if i == warmup:
            started = time.perf_counter()
            state.update(fds_after_warmup=open_files(), gdal_cache_after_warmup_mb=gdal.GetCacheUsed() / 1e6)
        kind = i % (len(jobs) + 1)
        output = folder / f"out{kind}.tif"
        if kind < len(jobs):
            algorithm, params = jobs[kind]
            processing.run(algorithm, {**params, "DEVICE": 1, "OUTPUT": str(output)})
        else:
            run_task(layer, models[Direction.LANDCOVER_TO_RGB], output)
        rss.append(live_rss(process))
    seconds = time.perf_counter() - started
    measured = rss[warmup:]
    window = max(1, min(SMOOTHING_RUNS, len(measured) // 2))
    first, last = float(np.median(measured[:window])), float(np.median(measured[-window:]))
    return {"runs": runs, "warmup": warmup, "size_px": size_px, "rss_first_mb": first / 1e6,
            "rss_last_mb": last / 1e6, "rss_peak_mb": max(measured) / 1e6, "growth": (last - first) / first,
            "growth_raw": (measured[-1] - rss[warmup - 1]) / rss[warmup - 1], **state, "fds_last": open_files(),
            "gdal_cache_last_mb": gdal.GetCacheUsed() / 1e6, "seconds_per_run": seconds / runs,
            "rss_mb": [round(v / 1e6, 1) for v in rss],
            "outputs_written": sum(gdal.Open(str(folder / f"out{k}.tif")) is not None for k in range(len(jobs) + 1))}


def live_rss(process: psutil.Process) -> int:
    """RSS once garbage is collected and glibc has handed its free heap pages back (``malloc_trim``)."""
    gc.collect()
    if LIBC is not None:
        LIBC.malloc_trim(0)
    return process.memory_info().rss


def open_files() -> int:
    """File descriptors this process holds."""
    return len(os.listdir("/proc/self/fd"))


def run_task(layer: object, model: Path, output: Path) -> None:
    """One dock-style run: a TranslateTask in QGIS's task manager, waited for with the event loop turning."""
    from qgis.core import QgsApplication
    from qgis.PyQt.QtCore import QCoreApplication

    from lcgan_qgis.core.run.job import TranslationRequest
    from lcgan_qgis.plugin.qgis_reader import ProviderReader
    from lcgan_qgis.plugin.tasks import TranslateTask

    outcomes: list[object] = []
    request = TranslationRequest(
        output_path=str(output),
        model=ModelChoice(direction=Direction.LANDCOVER_TO_RGB, path=str(model)),
        settings=RunSettings(execution=Execution(device="cpu")),
    )
    task = TranslateTask(request, ProviderReader.from_layer(layer), outcomes.append)
    QgsApplication.taskManager().addTask(task)
    deadline = time.monotonic() + 120
    while not outcomes:
        if time.monotonic() > deadline:
            raise TimeoutError("the soak task did not finish within 120 s")
        QCoreApplication.processEvents()
        time.sleep(0.002)
    if outcomes[0].job is None:  # type: ignore[attr-defined]
        raise RuntimeError(f"soak task failed: {outcomes[0].error}")  # type: ignore[attr-defined]
    QCoreApplication.processEvents()  # deferred deletions (the reader's provider clone)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.reliability.soak", description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--size", type=int, default=768, help="raster side in pixels")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="lcgan-soak-") as folder:
        print(json.dumps(soak(args.runs, args.warmup, args.size, Path(folder))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
