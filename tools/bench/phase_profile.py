"""``python -m tools.bench.phase_profile MODEL RASTER OUT [--threads N]``: where our default path spends its time.

One translation as the bench's ``engine_run`` makes it (``run_translation`` with a loaded model, ``translate``'s
defaults), with the engine's steps wrapped: per phase, the wall seconds, the CPU seconds of the thread that ran it
(``time.thread_time``: the read-ahead thread's reads and conversions run beside the inference) and the calls. Also
the job's process CPU, the load, and a hash of the output's pixels and overviews (to check that a change of the
engine leaves every pixel as it was). JSON on stdout; docs/bench_second_gen.md, "Where the default path spends its
time".
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

from .measures import cpu_seconds

#: (module path, attribute, phase): the wrapped steps (``streaming`` imports its helpers by name: wrapped there).
PHASES = (
    ("lcgan_qgis.core.run.engine", "plan_run", "plan: radiometry sample / land-cover pre-scan"),
    ("lcgan_qgis.core.rasters.gdal_io", "GdalReader.read", "read (GDAL)"),
    ("lcgan_qgis.core.run.streaming", "read_valid_mask", "read mask"),
    ("lcgan_qgis.core.run.streaming", "has_valid_pixel", "valid-pixel check"),
    ("lcgan_qgis.core.run.preprocess", "InputPlan.convert", "preprocess"),
    ("lcgan_qgis.core.run.preprocess", "landcover_to_onehot", "  one-hot"),
    ("lcgan_qgis.core.run.preprocess", "position_noise", "  noise"),
    ("lcgan_qgis.core.model.runtime", "Model.run", "inference"),
    ("lcgan_qgis.core.run.streaming", "Blender.add", "blending"),
    ("lcgan_qgis.core.run.streaming", "postprocess", "post-processing"),
    ("lcgan_qgis.core.rasters.output", "RowSink.add", "write (compress + flush)"),
    ("lcgan_qgis.core.rasters.geotiff", "GeoTiffWriter.build_overviews", "overviews"),
    ("lcgan_qgis.core.rasters.geotiff", "GeoTiffWriter.commit", "commit"),
    ("lcgan_qgis.core.run.engine", "translate_checked", "translate (the bench's timed span)"),
    ("lcgan_qgis.core.run.job", "class_counts", "statistics (class counts)"),
)


class Phases:
    """Wall and thread-CPU seconds and calls per phase, from any thread."""

    def __init__(self) -> None:
        self.totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0])
        self._lock = threading.Lock()

    def add(self, phase: str, wall: float, cpu: float) -> None:
        with self._lock:
            entry = self.totals[phase]
            entry[0] += wall
            entry[1] += cpu
            entry[2] += 1

    def wrap(self, function: Callable[..., Any], phase: str) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            t0, c0 = time.perf_counter(), time.thread_time()
            try:
                return function(*args, **kwargs)
            finally:
                self.add(phase, time.perf_counter() - t0, time.thread_time() - c0)
        return timed

    def install(self) -> None:
        """Wrap every step of :data:`PHASES` and the consumer's wait for the read-ahead thread."""
        import importlib

        from lcgan_qgis.core.run import streaming

        for module_name, attribute, phase in PHASES:
            owner: Any = importlib.import_module(module_name)
            *path, name = attribute.split(".")
            for part in path:
                owner = getattr(owner, part)
            setattr(owner, name, self.wrap(getattr(owner, name), phase))
        items = streaming._items

        def waited(*args: Any, **kwargs: Any) -> Iterator[Any]:
            source = items(*args, **kwargs)
            while True:
                t0 = time.perf_counter()
                try:
                    item = next(source)
                except StopIteration:
                    return
                finally:
                    self.add("wait for the read-ahead thread", time.perf_counter() - t0, 0.0)
                yield item
        streaming._items = waited


def output_hash(path: str) -> str:
    """sha256 (16 hex digits) of the pixels of every band and every overview level of ``path``."""
    from osgeo import gdal

    dataset = gdal.Open(path)
    digest = hashlib.sha256(dataset.ReadAsArray().tobytes())
    for level in range(dataset.GetRasterBand(1).GetOverviewCount()):
        for band in range(1, dataset.RasterCount + 1):
            digest.update(dataset.GetRasterBand(band).GetOverview(level).ReadAsArray().tobytes())
    return digest.hexdigest()[:16]


def profile(model_path: str, raster: str, output: str, threads: int | None = None,
            cache_dir: str | None = None) -> dict[str, Any]:
    """One profiled translation (see the module docstring)."""
    from lcgan_qgis.core.model.runtime import load_model
    from lcgan_qgis.core.rasters.gdal_io import GdalReader
    from lcgan_qgis.core.run.job import TranslationRequest, run_translation
    from lcgan_qgis.core.run.settings import RunSettings

    phases = Phases()
    phases.install()
    t0, c0 = time.perf_counter(), cpu_seconds()
    model = load_model(model_path, "cpu", threads=threads, cache_dir=cache_dir)
    phases.add("model load (before the timed span)", time.perf_counter() - t0, cpu_seconds() - c0)
    request = TranslationRequest(output_path=output, settings=RunSettings(), input_path=raster)
    t0, c0 = time.perf_counter(), cpu_seconds()
    with GdalReader(raster) as reader:
        job = run_translation(request, reader, log=lambda _line: None, model=model)
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    compile_s = model.compile_seconds
    model.close()
    return {"model": model_path, "raster": raster, "threads": threads or "default (every core)",
            "path": f"{model.backend} {model.precision}", "compile_s": round(compile_s, 3),
            "seconds": round(job.result.seconds, 3), "mpx_per_s": round(job.result.mpx_per_s, 4),
            "job_wall_s": round(wall, 3), "job_process_cpu_s": round(cpu, 3),
            "load": [round(x, 2) for x in os.getloadavg()], "output_sha256": output_hash(output),
            "output_mb": round(os.path.getsize(output) / 1e6, 2),
            "phases": {k: {"wall_s": round(v[0], 3), "cpu_s": round(v[1], 3), "calls": int(v[2])}
                       for k, v in phases.totals.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.bench.phase_profile", description=__doc__.split("\n")[0])
    parser.add_argument("model")
    parser.add_argument("raster")
    parser.add_argument("output")
    parser.add_argument("--threads", type=int, default=None, help="intra-op threads (default: every core)")
    parser.add_argument("--cache-dir", default=None, help="OpenVINO's compiled-model cache")
    args = parser.parse_args()
    print(json.dumps(profile(args.model, args.raster, args.output, args.threads, args.cache_dir)))


if __name__ == "__main__":
    main()
