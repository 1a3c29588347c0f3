"""``python -m tools.bench --models DIR``: ``make bench``'s headline speed measurement for the two generators of a
given model folder (e.g. an export of a new recipe at its shipped size) instead of the full-size random generator.

Per generator, the same method as the headline: the folder's model (copied to the cache with the int8 copy that
ships, made there where the folder has none, and its fidelity gates measured on the Zion calibration windows:
:func:`~.inputs.trained_models`), then on a ``size`` x ``size`` raster (RGB -> land cover: the 8-bit Zion Landsat
mirrored to size; land cover -> RGB: the Zion NLCD mirrored to size)

* the Deepness-like baseline (fp32 onnxruntime, 256 px tiles at 15 % overlap, centre-crop stitching; a land-cover
  tile one-hot encoded with noise channels beside it: :func:`~.measurements.baseline`);
* our default path end to end (``translate``'s defaults: the backend and precision ``auto`` picks for this model
  from its own gates), in a subprocess;
* the interleaved check on a 1024 px crop (baseline, ours, baseline without spinning, ``rounds`` times).

The ratio is ours / baseline in Mpx/s; every phase records the load average (the CPU is shared).
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from lcgan_qgis.core.storage.files import AtomicFile

from .inputs import synthetic_landcover, synthetic_raster, trained_models
from .measurements import baseline, engine_subprocess, interleaved_check
from .measures import CACHE, load, timed

log = logging.getLogger("bench")
BAR = 3.75  # issue 22's done-when: the default CPU path at least 3.75x the Deepness-like baseline at 4096 px
CHECK_CROP_PX = 1024


def _gates(model: Path) -> dict[str, Any]:
    """What ``auto`` runs for ``model`` and the gates of every path (its fidelity record)."""
    from lcgan_qgis.core.model.precision import MIN_CLASS_AGREEMENT, MIN_PSNR_DB, passes, read_record
    from lcgan_qgis.core.model.runtime import load_model

    with load_model(model, "cpu") as loaded:
        record, _note = read_record(model)
        auto = {"auto": f"{loaded.backend} {loaded.precision}", "summary": loaded.summary,
                "notes": list(loaded.notes)}
    if record is None:
        return {**auto, "paths": None, "int8_passes": None}
    paths = {k: {**v, "passes": passes(record.metric, v["value"])} for k, v in record.paths.items()}
    return {**auto, "metric": record.metric, "calibration": record.calibration,
            "gate": MIN_CLASS_AGREEMENT if record.metric == "class_agreement" else MIN_PSNR_DB, "paths": paths,
            "int8_passes": {k: v["passes"] for k, v in paths.items() if k.endswith("/int8")}}


def _architecture(model: Path) -> dict[str, Any]:
    """The design and sizes read back from the graph (training.finetune.base), and the file's size."""
    import onnx

    from lcgan_qgis.tooling.weight_storage import restore_fp32
    from training.finetune.base import read_architecture

    graph, _ = restore_fp32(onnx.load(str(model)))
    arch, params = read_architecture(graph, str(model))
    count = sum(w.size + (b.size if b is not None else 0) for w, b in params)
    return {"generator": arch.generator, "ngf": arch.ngf, "n_blocks": arch.n_blocks,
            "in_channels": arch.in_channels, "out_channels": arch.out_channels, "parameters": int(count),
            "file_mb": round(model.stat().st_size / 1e6, 2)}


def generator_row(model: Path, raster: Path, work: Path, rounds: int, threads: int | None) -> dict[str, Any]:
    """Baseline, our default path and the interleaved check for one generator (see the module docstring)."""
    from osgeo import gdal

    crop_px = min(CHECK_CROP_PX, gdal.Open(str(raster)).RasterXSize)
    work.mkdir(parents=True, exist_ok=True)
    cache = work / "openvino_cache"
    phases: dict[str, Any] = {}

    def phase(name: str, fn: Any) -> Any:
        log.info("%s %s (load %.2f)...", model.stem, name, load())
        result, timing = timed(fn)
        phases[name] = timing
        log.info("%s %s: %.1f s", model.stem, name, timing["wall_s"])
        return result

    gates = phase("gates", lambda: _gates(model))
    arch = phase("architecture", lambda: _architecture(model))
    base = phase("baseline", lambda: baseline(model, raster, threads=threads))
    ours = phase("ours_e2e", lambda: engine_subprocess(model, raster, work / "ours.tif", "auto", backend="auto",
                                                       cache_dir=cache, threads=threads))
    (work / "ours.tif").unlink(missing_ok=True)
    check = phase("interleaved_check", lambda: interleaved_check(model, raster, crop_px, work, cache,
                                                                 ours["precision"], ours["backend"], rounds,
                                                                 threads))
    ratio = round(ours["mpx_per_s"] / base["mpx_per_s"], 3)
    return {"model": str(model), "raster": raster.name, "architecture": arch,
            "default_path": f"{ours['backend']} {ours['precision']}",
            "e2e_mpx_per_s": ours["mpx_per_s"], "baseline_mpx_per_s": base["mpx_per_s"],
            "speedup_vs_baseline": ratio, "speedup_vs_baseline_interleaved": check["speedup_vs_baseline"],
            "speedup_vs_baseline_no_spinning_interleaved": check["speedup_vs_baseline_no_spinning"],
            "meets_bar": ratio >= BAR and check["speedup_vs_baseline"] >= BAR,
            "gates": gates, "baseline": base, "ours": ours, "interleaved_check": check, "phases": phases}


def bench_models(folder: Path, out_path: Path, size: int, work: Path, rounds: int = 2,
                 threads: int | None = None) -> dict[str, Any]:
    """Both generators of ``folder`` against the baseline at ``size`` px; writes ``out_path`` (JSON).

    Raises:
        SystemExit: the folder does not hold both generators.
    """
    started = time.time()
    models = trained_models(folder)
    if models is None:
        raise SystemExit(f"error: {folder} does not hold rgb_to_landcover.onnx and landcover_to_rgb.onnx")
    rasters = {"rgb_to_landcover": synthetic_raster(CACHE, size), "landcover_to_rgb": synthetic_landcover(CACHE, size)}
    report: dict[str, Any] = {
        "folder": str(folder), "size_px": size, "bar": BAR, "cpus": os.cpu_count(),
        "threads": threads or "the bench's defaults: onnxruntime's default session options for the baseline, the "
                              "engine's default threads (every core) for ours",
        "load_at_start": os.getloadavg(), "generators": {}}
    for name, model in models.items():
        report["generators"][name] = generator_row(model, rasters[name], work / name, rounds, threads)
    report["total_s"] = round(time.time() - started, 1)
    report["load_at_end"] = os.getloadavg()
    with AtomicFile(out_path) as tmp:
        tmp.write_text(json.dumps(report, indent=2) + "\n")
    return report


def print_models(report: dict[str, Any]) -> None:
    """One line per generator: path, Mpx/s, ratio (main run / interleaved), gates of the int8 copies."""
    for name, row in report["generators"].items():
        a = row["architecture"]
        print(f"{name}: {a['generator']} ngf {a['ngf']} x {a['n_blocks']} blocks ({a['parameters'] / 1e6:.2f} M), "
              f"{row['default_path']}: {row['e2e_mpx_per_s']:.3f} vs baseline {row['baseline_mpx_per_s']:.3f} "
              f"Mpx/s = {row['speedup_vs_baseline']:.2f}x (interleaved {row['speedup_vs_baseline_interleaved']:.2f}x;"
              f" bar {BAR}); int8 gates {row['gates']['int8_passes']}")
