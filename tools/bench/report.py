"""The run: every phase in one process tree, the summary figures and the JSON report, and the printed table."""

from __future__ import annotations

import json
import logging
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lcgan_qgis.core.storage.files import AtomicFile

from .inputs import (
    OVERLAP_PX,
    TILE_PX,
    full_models,
    generator_flops_per_px,
    mosaic_vrt,
    synthetic_landcover,
    synthetic_raster,
    trained_models,
)
from .measurements import (
    baseline,
    compile_times,
    engine_subprocess,
    gemm_probe,
    interleaved_check,
    path_rows,
    pure_inference,
    rss,
    seams,
    spinning,
)
from .measures import CACHE, ZION, load, timed
from .scale_out import scale_out
from .scenario import bench_row as scenario_row

log = logging.getLogger("bench")
CHECK_CROP_PX = 1024  # the interleaved check's crop: 25 baseline tiles, 9 of our windows


def default_path(trained: dict[str, Path] | None, models: dict[str, Path]) -> dict[str, Any]:
    """The path ``load_model``'s defaults choose for the bundled (trained) RGB -> land-cover model: the speed runs
    use it on the full-size generator, whose random weights fail every reduced-precision gate (near-tie logits)
    and so say nothing about what a trained full-size model would run. Without trained models: auto on the
    full-size generator itself."""
    from lcgan_qgis.core.model.runtime import load_model

    source = (trained or models)["rgb_to_landcover"]
    with load_model(source, "cpu") as model:
        return {"backend": model.backend, "precision": model.precision, "chosen_for": str(source),
                "summary": model.summary, "notes": list(model.notes)}


def auto_on(model: Path) -> dict[str, Any]:
    """What ``auto`` runs for ``model`` and why (its own fidelity record)."""
    from lcgan_qgis.core.model.precision import read_record
    from lcgan_qgis.core.model.runtime import load_model

    with load_model(model, "cpu") as loaded:
        record, _note = read_record(model)
        return {"backend": loaded.backend, "precision": loaded.precision, "notes": list(loaded.notes),
                "gates": record.paths if record else None, "calibration": record.calibration if record else None}


def bench(out_path: Path, size: int, large_factor: int, work: Path, trained_dir: Path | None,
          scale_out_size: int = 8192) -> dict[str, Any]:
    from lcgan_qgis.core.run.settings import DEFAULT_WINDOW_PX
    from lcgan_qgis.core.run.tiling import fit_window

    started = time.time()
    report: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                                          "processor": platform.processor(), "load_at_start": os.getloadavg()}}
    phases: dict[str, Any] = {}

    def phase(name: str, fn: Callable[[], Any]) -> Any:
        log.info("%s (load %.2f)...", name, load())
        result, timing = timed(fn)
        phases[name] = timing
        log.info("%s: %.1f s", name, timing["wall_s"])
        return result

    cache = work / "openvino_cache"
    models = phase("models", full_models)
    flops_px = phase("flops", generator_flops_per_px)
    raster = phase("raster", lambda: synthetic_raster(CACHE, size))
    gemm = phase("gemm_probe", gemm_probe)
    trained = phase("trained_models", lambda: trained_models(trained_dir))
    path = phase("default_path", lambda: default_path(trained, models))
    backend, precision = path["backend"], path["precision"]
    window = fit_window(size, DEFAULT_WINDOW_PX, OVERLAP_PX, 4)
    base = phase("baseline", lambda: baseline(models["rgb_to_landcover"], raster))
    compiled = phase("compile", lambda: compile_times(models["rgb_to_landcover"], precision, backend,
                                                      (1, 3, window, window), cache)) if backend == "openvino" \
        else {"note": "onnxruntime: no compile step"}
    ours = phase("ours_e2e", lambda: engine_subprocess(models["rgb_to_landcover"], raster, work / "ours.tif",
                                                       precision, backend=backend, cache_dir=cache))
    pure = phase("ours_pure", lambda: pure_inference(models["rgb_to_landcover"], ours["precision"], ours["backend"],
                                                     ours["batch_shape"], ours["tiles"], cache))
    spin = phase("spinning", lambda: spinning(models["rgb_to_landcover"], DEFAULT_WINDOW_PX))
    auto_random = phase("auto_full_size", lambda: auto_on(models["rgb_to_landcover"]))
    seam_random = phase("seams_random", lambda: seams(models, work, cache))
    seam = phase("seams_trained", lambda: seams(trained, work, cache)) if trained else seam_random
    rows_full = phase("paths_full_size", lambda: path_rows(models["rgb_to_landcover"], ZION / "landsat8_rgb.tif",
                                                           work, cache))
    inputs = {"rgb_to_landcover": ZION / "landsat8_rgb.tif", "landcover_to_rgb": ZION / "nlcd2011_on_landsat_grid.tif"}
    rows_trained = phase("paths_trained", lambda: {name: path_rows(trained[name], inputs[name], work, cache, True)
                                                   for name in inputs}) if trained else None
    memory = phase("rss", lambda: rss(work, raster, mosaic_vrt(raster, size, large_factor)))
    check = phase("interleaved_check", lambda: interleaved_check(models["rgb_to_landcover"], raster,
                                                                 min(size, CHECK_CROP_PX), work, cache, precision,
                                                                 backend))
    scaled = phase("scale_out", lambda: scale_out(
        models["landcover_to_rgb"], synthetic_landcover(CACHE, scale_out_size), work,
        small_raster=synthetic_landcover(CACHE, 1800)))
    scenario = phase("scenario", lambda: scenario_row(size, work / "scenario"))  # 1 % of the map changed

    batch = ours["batch_shape"]
    engine_flops = flops_px * batch[0] * batch[2] * batch[3] * ours["tiles"]
    gflops = engine_flops / ours["seconds"] / 1e9
    peak = max(memory["small"]["peak_rss_mb"], memory["large"]["peak_rss_mb"])
    trained_rows = rows_trained or {}
    report.update({
        "default_path": f"{ours['backend']} {ours['precision']}",
        "e2e_mpx_per_s": ours["mpx_per_s"],
        "overhead_ratio": round(ours["seconds"] / pure["wall_s"], 4),
        "rss_peak_mb": peak,
        "rss_ratio": round(memory["large"]["peak_rss_mb"] / memory["small"]["peak_rss_mb"], 4),
        "gemm_fraction": round(gflops / gemm["gflops"], 4),
        "seam_ratio": seam["seam_ratio"],
        "seam_ratio_naive": seam["seam_ratio_naive"],
        "baseline_mpx_per_s": base["mpx_per_s"],
        "speedup_vs_baseline": round(ours["mpx_per_s"] / base["mpx_per_s"], 3),
        "speedup_vs_deepness_estimate": round(ours["mpx_per_s"] / base["mpx_per_s"] * 1.33, 3),
        "speedup_vs_baseline_interleaved": check["speedup_vs_baseline"],
        "speedup_vs_baseline_no_spinning_interleaved": check["speedup_vs_baseline_no_spinning"],
        "compile_s_first_run": compiled.get("first_run"),
        "compile_s_second_run": compiled.get("second_run"),
        "paths": {name: _path_summary(rows) for name, rows in
                  (("full_size_rgb_to_landcover", rows_full), *((f"bundled_{k}", v) for k, v in trained_rows.items()))},
        "scale_out": scaled,
        "scenario": scenario,
    })
    report["detail"] = {
        "raster": f"{size}x{size} 8-bit RGB (Zion Landsat stretched and mirrored), UTM 12N 30 m",
        "model": "ResnetGenerator(3, 14, ngf=64, n_blocks=9), random weights seed 0, exported by training.export; "
                 f"contract tile {TILE_PX} px, overlap {OVERLAP_PX} px",
        "gflop_per_256_tile": round(flops_px * TILE_PX ** 2 / 1e9, 2),
        "engine_gflops": round(gflops, 1),
        "default_path": path, "auto_on_full_size_random_weights": auto_random, "compile": compiled,
        "ours": ours, "ours_pure": pure,
        "overhead_ratio_vs_inference_inside_run": round(ours["seconds"] / ours["ort_seconds_inside"], 4),
        "fidelity_and_seams_model": ("trained: " + str(trained["rgb_to_landcover"].parent)) if trained else
        "random weights (no trained models found: pass --trained DIR)",
        "baseline": base, "gemm_probe": gemm, "spinning": spin, "seams": seam, "seams_random_weights": seam_random,
        "paths_full_size": rows_full, "paths_trained": rows_trained, "interleaved_check": check,
        "rss": {**memory, "note": "engine with a per-pixel 3->14 model (its buffers do not depend on the model); "
                                  "the real model's inference memory adds to it: see detail.ours.peak_rss_mb"},
        "deepness_reference": "Deepness 0.6.5 measured 0.119-0.124 Mpx/s on this raster size and model, about "
                              "1.33x slower than this baseline (MISSION.md); speedup_vs_deepness_estimate uses that",
        "phases": phases,
        "total_s": round(time.time() - started, 1),
        "load_at_end": os.getloadavg(),
    }
    with AtomicFile(out_path) as tmp:
        tmp.write_text(json.dumps(report, indent=2) + "\n")
    return report


def _path_summary(result: dict[str, Any]) -> dict[str, Any]:
    """Per path: Mpx/s end to end, pure inference seconds, overhead ratio, fidelity vs fp32, speed-up vs fp32."""
    out = {}
    for key, row in result["rows"].items():
        if "skipped" in row:
            out[key] = {"skipped": row["skipped"]}
            continue
        fidelity = row.get("class_agreement_vs_fp32", row.get("psnr_db_vs_fp32"))
        out[key] = {"mpx_per_s": row["mpx_per_s"], "e2e_s": row["seconds"], "pure_s": row.get("pure_s"),
                    "overhead_ratio": row.get("overhead_ratio"), "fidelity_vs_fp32": fidelity,
                    "speedup_vs_fp32": row["speedup_vs_fp32"]}
    return out


def scale_out_only(out_path: Path, size: int, work: Path, tile_px: int, device: str) -> dict[str, Any]:
    """Measure only the scale-out row and put it into the report at ``out_path`` (kept otherwise as it is)."""
    models = full_models()
    row, timing = timed(lambda: scale_out(models["landcover_to_rgb"], synthetic_landcover(CACHE, size), work,
                                          tile_px, device, small_raster=synthetic_landcover(CACHE, 1800)))
    row["wall_s"] = timing["wall_s"]
    report = json.loads(out_path.read_text()) if out_path.exists() else {}
    report["scale_out"] = row
    out_path.write_text(json.dumps(report, indent=2) + "\n")
    return row


def _scale_out_rows(row: dict[str, Any]) -> list[tuple[str, str, str]]:
    one, two = row["one_worker"], row["two_workers"]
    return [
        ("scale-out 1 / 2 workers", f"{one['mpx_per_s']:.3f} / {two['mpx_per_s']:.3f} Mpx/s",
         f"ratio {row['ratio_two_vs_one_worker']:.2f} on {row['cores']} cores; engine "
         f"{row['single_process']['mpx_per_s']:.3f} Mpx/s"),
        ("scale-out overhead (1 worker)", f"{row['overhead_one_worker_vs_single']:.3f}",
         f"windows x{row['windows_ratio']:.3f}, per window x{row['overhead_per_window']:.3f} (runs in sequence)"),
    ] + ([("scale-out per-tile overhead", f"{row['per_tile_overhead']['median_ratio']:.3f}",
           f"median of {len(row['per_tile_overhead']['pairs'])} interleaved pairs, one tile (goal 1.15)")]
         if row.get("per_tile_overhead") else [])


def print_table(report: dict[str, Any]) -> None:
    d = report["detail"]
    compiled = (f"compile {report['compile_s_first_run']:.1f} s first run, {report['compile_s_second_run']:.1f} s "
                "cached") if report.get("compile_s_first_run") is not None else "no compile step"
    rows = [
        ("end-to-end (default path)", f"{report['e2e_mpx_per_s']:.3f} Mpx/s", f"{d['ours']['tiles']} windows "
         f"{d['ours']['batch_shape'][2]}px, {report['default_path']}, {d['ours']['seconds']:.1f} s; {compiled}"),
        ("Deepness-like baseline", f"{report['baseline_mpx_per_s']:.3f} Mpx/s",
         f"{d['baseline']['tiles']} tiles 256px 15%, {d['baseline']['wall_s']:.1f} s"),
        ("speed-up vs baseline", f"{report['speedup_vs_baseline']:.2f}x",
         f"~{report['speedup_vs_deepness_estimate']:.2f}x Deepness (x1.33); bar 3.75x"),
        ("same, interleaved on a crop", f"{report['speedup_vs_baseline_interleaved']:.2f}x",
         f"{d['interleaved_check']['crop_px']} px, {len(d['interleaved_check']['runs'])} rounds; vs baseline without "
         f"spinning {report['speedup_vs_baseline_no_spinning_interleaved']:.2f}x"),
        ("overhead e2e / pure inference", f"{report['overhead_ratio']:.3f}",
         f"pure {d['ours_pure']['wall_s']:.1f} s; vs inference inside run "
         f"{d['overhead_ratio_vs_inference_inside_run']:.3f}; bar 1.10"),
        ("GEMM fraction", f"{report['gemm_fraction']:.2f}",
         f"{d['engine_gflops']:.0f} GFLOP/s vs fp32 GEMM {d['gemm_probe']['gflops']:.0f}"),
        ("peak RSS / ratio", f"{report['rss_peak_mb']:.0f} MB / {report['rss_ratio']:.3f}",
         f"{d['rss']['small']['raster']} vs {d['rss']['large']['raster']}"),
        ("seam ratio ours / naive", f"{report['seam_ratio']:.3f} / {report['seam_ratio_naive']:.3f}",
         f"{d['seams']['input']}, {d['seams']['backend']} {d['seams']['precision']}"),
    ]
    if "scale_out" in report:
        rows += _scale_out_rows(report["scale_out"])
    width = max(len(r[0]) for r in rows)
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>22}  {note}")
    for model, paths in report["paths"].items():
        print(f"{model}: path, Mpx/s e2e, pure s, overhead, fidelity vs fp32, speed-up vs fp32")
        for key, row in paths.items():
            if "skipped" in row:
                print(f"  {key:<22} skipped: {row['skipped']}")
                continue
            print(f"  {key:<22} {row['mpx_per_s']:>7.3f} {row['pure_s'] or 0:>7.1f} {row['overhead_ratio'] or 0:>6.3f} "
                  f"{row['fidelity_vs_fp32']!s:>8} {row['speedup_vs_fp32']:>6.2f}x")
    print(f"total {d['total_s']:.0f} s; load at start {report['machine']['load_at_start'][0]:.2f}, "
          f"at end {d['load_at_end'][0]:.2f}")
