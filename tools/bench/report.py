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
    engine_subprocess,
    gemm_probe,
    precision_paths,
    pure_onnxruntime,
    rss,
    seams,
    spinning,
)
from .measures import CACHE, load, timed
from .scale_out import scale_out

log = logging.getLogger("bench")


def bench(out_path: Path, size: int, large_factor: int, work: Path, trained_dir: Path | None,
          scale_out_size: int = 8192) -> dict[str, Any]:
    from lcgan_qgis.core.engine import DEFAULT_WINDOW_PX

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

    models = phase("models", full_models)
    flops_px = phase("flops", generator_flops_per_px)
    raster = phase("raster", lambda: synthetic_raster(CACHE, size))
    gemm = phase("gemm_probe", gemm_probe)
    base = phase("baseline", lambda: baseline(models["rgb_to_landcover"], raster))
    ours = phase("ours_e2e", lambda: engine_subprocess(models["rgb_to_landcover"], raster, work / "ours.tif"))
    pure = phase("ours_pure", lambda: pure_onnxruntime(models["rgb_to_landcover"], ours["precision"],
                                                       ours["batch_shape"], ours["tiles"]))
    spin = phase("spinning", lambda: spinning(models["rgb_to_landcover"], DEFAULT_WINDOW_PX))
    trained = phase("trained_models", lambda: trained_models(trained_dir))
    seam_random = phase("seams_random", lambda: seams(models, work))
    seam = phase("seams_trained", lambda: seams(trained, work)) if trained else seam_random
    precision_random = phase("precision_random", lambda: precision_paths(models, work))
    precision = phase("precision_trained", lambda: precision_paths(trained, work)) if trained else precision_random
    memory = phase("rss", lambda: rss(work, raster, mosaic_vrt(raster, size, large_factor)))
    scaled = phase("scale_out", lambda: scale_out(
        models["landcover_to_rgb"], synthetic_landcover(CACHE, scale_out_size), work,
        small_raster=synthetic_landcover(CACHE, 1800)))

    batch = ours["batch_shape"]
    engine_flops = flops_px * batch[0] * batch[2] * batch[3] * ours["tiles"]
    gflops = engine_flops / ours["seconds"] / 1e9
    peak = max(memory["small"]["peak_rss_mb"], memory["large"]["peak_rss_mb"])
    report.update({
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
        "int8_class_agreement_vs_fp32": precision["rgb_to_landcover"]["class_agreement_int8_vs_fp32"],
        "int8_psnr_db_vs_fp32": precision["landcover_to_rgb"]["psnr_db_int8_vs_fp32"],
        "scale_out": scaled,
    })
    report["detail"] = {
        "raster": f"{size}x{size} 8-bit RGB (Zion Landsat stretched and mirrored), UTM 12N 30 m",
        "model": "ResnetGenerator(3, 14, ngf=64, n_blocks=9), random weights seed 0, exported by training.export; "
                 f"contract tile {TILE_PX} px, overlap {OVERLAP_PX} px",
        "gflop_per_256_tile": round(flops_px * TILE_PX ** 2 / 1e9, 2),
        "engine_gflops": round(gflops, 1),
        "ours": ours, "ours_pure_onnxruntime": pure,
        "overhead_ratio_vs_ort_inside_run": round(ours["seconds"] / ours["ort_seconds_inside"], 4),
        "fidelity_and_seams_model": ("trained: " + str(trained["rgb_to_landcover"].parent)) if trained else
        "random weights (no trained models found: pass --trained DIR)",
        "baseline": base, "gemm_probe": gemm, "spinning": spin, "seams": seam, "seams_random_weights": seam_random,
        "precision": precision, "precision_random_weights": precision_random,
        "rss": {**memory, "note": "engine with a per-pixel 3->14 model (its buffers do not depend on the model); "
                                  "the real model's onnxruntime arena adds to it: see detail.ours.peak_rss_mb"},
        "deepness_reference": "Deepness 0.6.5 measured 0.119-0.124 Mpx/s on this raster size and model, about "
                              "1.33x slower than this baseline (MISSION.md); speedup_vs_deepness_estimate uses that",
        "phases": phases,
        "total_s": round(time.time() - started, 1),
        "load_at_end": os.getloadavg(),
    }
    out_path.write_text(json.dumps(report, indent=2) + "\n")
    return report


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
    rows = [
        ("end-to-end (default path)", f"{report['e2e_mpx_per_s']:.3f} Mpx/s", f"{d['ours']['tiles']} windows "
         f"{d['ours']['batch_shape'][2]}px, {d['ours']['precision']}, {d['ours']['seconds']:.1f} s"),
        ("Deepness-like baseline", f"{report['baseline_mpx_per_s']:.3f} Mpx/s",
         f"{d['baseline']['tiles']} tiles 256px 15%, {d['baseline']['wall_s']:.1f} s"),
        ("speed-up vs baseline", f"{report['speedup_vs_baseline']:.2f}x",
         f"~{report['speedup_vs_deepness_estimate']:.2f}x Deepness (x1.33)"),
        ("overhead e2e / pure ORT", f"{report['overhead_ratio']:.3f}",
         f"pure {d['ours_pure_onnxruntime']['wall_s']:.1f} s; vs ORT inside run "
         f"{d['overhead_ratio_vs_ort_inside_run']:.3f}"),
        ("GEMM fraction", f"{report['gemm_fraction']:.2f}",
         f"{d['engine_gflops']:.0f} GFLOP/s vs fp32 GEMM {d['gemm_probe']['gflops']:.0f}"),
        ("peak RSS / ratio", f"{report['rss_peak_mb']:.0f} MB / {report['rss_ratio']:.3f}",
         f"{d['rss']['small']['raster']} vs {d['rss']['large']['raster']}"),
        ("seam ratio ours / naive", f"{report['seam_ratio']:.3f} / {report['seam_ratio_naive']:.3f}",
         d["seams"]["input"]),
        ("int8 vs fp32 (same windows)",
         f"{report['int8_class_agreement_vs_fp32']:.2%} / {report['int8_psnr_db_vs_fp32']} dB",
         f"speed-up {d['precision']['rgb_to_landcover']['speedup_int8_vs_fp32']:.2f}x / "
         f"{d['precision']['landcover_to_rgb']['speedup_int8_vs_fp32']:.2f}x"),
    ]
    if "scale_out" in report:
        rows += _scale_out_rows(report["scale_out"])
    width = max(len(r[0]) for r in rows)
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>22}  {note}")
    print(f"total {d['total_s']:.0f} s; load at start {report['machine']['load_at_start'][0]:.2f}, "
          f"at end {d['load_at_end'][0]:.2f}")
