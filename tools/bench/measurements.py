"""The measurements: GEMM probe, the Deepness-like baseline, engine runs (in a subprocess, so peak RSS is their
own), pure inference, compile times, intra-op spinning, one row per backend x precision, seams and memory."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .inputs import baseline_io, pointwise_model
from .measures import REPO, ZION, grid_lines, load, peak_rss_mb, psnr, read, seam_ratio, timed

BASELINE_TILE_PX, BASELINE_OVERLAP = 256, 0.15


def gemm_probe(n: int = 2048, repeats: int = 3) -> dict[str, float]:
    """fp32 GEMM GFLOP/s through onnxruntime's MatMul (MLAS, the convolutions' kernels), best of ``repeats``."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from lcgan_qgis.core.model.runtime import default_threads, session_options

    graph = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["c"])], "gemm",
                              [helper.make_tensor_value_info("a", TensorProto.FLOAT, [n, n]),
                               helper.make_tensor_value_info("b", TensorProto.FLOAT, [n, n])],
                              [helper.make_tensor_value_info("c", TensorProto.FLOAT, [n, n])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    session = ort.InferenceSession(model.SerializeToString(), session_options(default_threads()),
                                   providers=["CPUExecutionProvider"])
    a, b = (np.random.default_rng(i).random((n, n), dtype=np.float32) for i in (0, 1))
    session.run(None, {"a": a, "b": b})
    best = min(timed(lambda: session.run(None, {"a": a, "b": b}))[1]["wall_s"] for _ in range(repeats))
    return {"n": n, "gflops": round(2 * n ** 3 / best / 1e9, 1), "seconds": best, "load": load()}


def baseline(model_path: Path, raster: Path, spinning: bool = True, threads: int | None = None) -> dict[str, Any]:
    """Deepness-like: fp32 onnxruntime (default session options) over 256 px tiles at 15 % overlap, one tile per
    run, whole output in memory, centre-crop stitching (each tile keeps its middle; the raster edge is zero-padded).
    ``spinning=False`` turns onnxruntime's intra-op spinning off (not what Deepness runs: a load-robust reference,
    since spinning threads lose most when other jobs share the CPU). A land cover -> RGB model reads its tile
    one-hot encoded with noise channels beside it (:func:`~.inputs.baseline_io`); ``threads``: intra-op threads
    (None: onnxruntime's default, every core)."""
    import onnxruntime as ort
    from osgeo import gdal

    options = ort.SessionOptions()
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if threads:
        options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
    bands, prepare, finish = baseline_io(model_path)
    ds = gdal.Open(str(raster))
    width, height = ds.RasterXSize, ds.RasterYSize
    tile = BASELINE_TILE_PX
    margin = int(tile * BASELINE_OVERLAP) // 2
    stride = tile - 2 * margin
    out: np.ndarray | None = None

    def run() -> int:
        nonlocal out
        count = 0
        for y in range(0, height - 2 * margin, stride):
            for x in range(0, width - 2 * margin, stride):
                w, h = min(tile, width - x), min(tile, height - y)
                pixels = np.zeros((bands, tile, tile), np.float32)
                pixels[:, :h, :w] = ds.ReadAsArray(x, y, w, h, band_list=list(range(1, bands + 1)))
                result = finish(session.run(None, {"input": prepare(pixels)})[0][0])
                if out is None:
                    out = np.zeros((result.shape[0], height, width), np.uint8)
                top, left = (0 if y == 0 else margin), (0 if x == 0 else margin)
                out[:, y + top:y + min(h, tile - margin), x + left:x + min(w, tile - margin)] = \
                    result[:, top:min(h, tile - margin), left:min(w, tile - margin)]
                count += 1
        return count

    tiles, timing = timed(run)
    return {"tiles": tiles, "tile_px": tile, "overlap": BASELINE_OVERLAP, **timing,
            "mpx_per_s": round(width * height / 1e6 / timing["wall_s"], 4)}


def engine_run(model: str, raster: str, output: str, precision: str, window_px: int | None, backend: str = "auto",
               cache_dir: str | None = None, pure: bool = False, threads: int | None = None) -> dict[str, Any]:
    """One translation through the job every caller runs (``core.run.job.run_translation``), with the inference time
    summed per call (runs in a subprocess: see ``main``); ``pure`` then also times the model alone over as many
    windows of the same shape (same process, warm)."""
    from lcgan_qgis.core.model.runtime import Model, load_model
    from lcgan_qgis.core.rasters.gdal_io import GdalReader
    from lcgan_qgis.core.run.job import TranslationRequest, run_translation
    from lcgan_qgis.core.run.settings import RunSettings, Windowing

    started = time.perf_counter()
    loaded = load_model(model, "cpu", threads=threads, precision=precision, backend=backend, cache_dir=cache_dir)
    load_s = time.perf_counter() - started
    compile_at_load = loaded.compile_seconds
    inference_seconds = [0.0]
    shapes: list[tuple[int, ...]] = []

    class Timed(Model):
        def run(self, batch: np.ndarray) -> np.ndarray:
            t0 = time.perf_counter()
            out = super().run(batch)
            inference_seconds[0] += time.perf_counter() - t0
            shapes.append(tuple(batch.shape))
            return out

    timed_model = Timed(**{f.name: getattr(loaded, f.name) for f in dataclasses.fields(loaded)})
    request = TranslationRequest(
        output_path=output,
        settings=RunSettings(windowing=Windowing(window_px=window_px)),
        input_path=raster,
    )
    with GdalReader(raster) as reader:
        job, timing = timed(lambda: run_translation(request, reader, log=lambda _line: None, model=timed_model))
    result = job.result
    out = {"seconds": round(result.seconds, 3), "tiles": result.tiles, "mpx_per_s": round(result.mpx_per_s, 4),
           "ort_seconds_inside": round(inference_seconds[0], 3), "window_shapes": sorted({str(s) for s in shapes}),
           "batch_shape": list(shapes[0]), "precision": loaded.precision, "backend": loaded.backend,
           "model_file": loaded.path.name, "summary": loaded.summary, "notes": list(loaded.notes),
           "load_s": round(load_s, 3), "compile_s_at_load": round(compile_at_load, 3),
           "compile_s": round(timed_model.compile_seconds, 3), "peak_rss_mb": peak_rss_mb(), **timing}
    if pure:
        x = np.random.default_rng(0).uniform(-1, 1, shapes[0]).astype(np.float32)
        _, pure_timing = timed(lambda: [loaded.run(x) for _ in range(result.tiles)])
        out["pure_s"] = pure_timing["wall_s"]
        out["overhead_ratio"] = round(result.seconds / pure_timing["wall_s"], 4)
    loaded.close()
    return out


def engine_subprocess(model: Path, raster: Path, output: Path, precision: str = "auto",
                      window_px: int | None = None, backend: str = "auto", cache_dir: Path | None = None,
                      pure: bool = False, threads: int | None = None) -> dict[str, Any]:
    """``engine_run`` in a fresh interpreter, so its peak RSS is its own."""
    args = [sys.executable, "-m", "tools.bench", "engine-run", "--model", str(model), "--raster", str(raster),
            "--output", str(output), "--precision", precision, "--backend", backend]
    args += (["--window", str(window_px)] if window_px else []) + (["--cache-dir", str(cache_dir)] if cache_dir
                                                                   else []) + (["--pure"] if pure else [])
    args += ["--threads", str(threads)] if threads else []
    done = subprocess.run(args, cwd=REPO, capture_output=True, text=True, check=False,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    if done.returncode != 0:
        raise RuntimeError(f"engine run failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def pure_inference(model: Path, precision: str, backend: str, batch_shape: Sequence[int], count: int,
                   cache_dir: Path | None = None) -> dict[str, Any]:
    """The model alone over ``count`` batches of ``batch_shape`` (what the engine ran), no I/O."""
    from lcgan_qgis.core.model.runtime import load_model

    loaded = load_model(model, "cpu", precision=precision, backend=backend, cache_dir=cache_dir)
    x = np.random.default_rng(0).uniform(-1, 1, batch_shape).astype(np.float32)
    loaded.run(x)  # warm-up (the engine's first window pays this too, inside its e2e time)
    _, timing = timed(lambda: [loaded.run(x) for _ in range(count)])
    loaded.close()
    return {"batches": count, "batch_shape": list(batch_shape), "backend": backend, "precision": precision,
            **timing}


def compile_times(model: Path, precision: str, backend: str, batch_shape: Sequence[int],
                  cache: Path) -> dict[str, Any]:
    """OpenVINO's compile time for the engine's window, first with an empty model cache, then with it filled
    (each in a fresh process, as a first and a second QGIS session would be)."""
    import shutil

    shutil.rmtree(cache, ignore_errors=True)
    code = ("import json, sys, numpy as np; from lcgan_qgis.core.model.runtime import load_model; "
            "m = load_model(sys.argv[1], 'cpu', precision=sys.argv[2], backend=sys.argv[3], cache_dir=sys.argv[4]); "
            "m.run(np.zeros(json.loads(sys.argv[5]), np.float32)); "
            "print(json.dumps({'compile_s': round(m.compile_seconds, 3), 'backend': m.backend}))")
    out = {}
    for name in ("first_run", "second_run"):
        done = subprocess.run([sys.executable, "-c", code, str(model), precision, backend, str(cache),
                               json.dumps(list(batch_shape))], cwd=REPO, capture_output=True, text=True,
                              check=False, env={**os.environ, "PYTHONPATH": str(REPO)})
        if done.returncode != 0:
            raise RuntimeError(f"compile run failed: {done.stderr[-2000:]}")
        out[name] = json.loads(done.stdout.strip().splitlines()[-1])["compile_s"]
    out["cache_mb"] = round(sum(p.stat().st_size for p in cache.glob("*.blob")) / 1e6, 3)
    return out


def interleaved_check(model: Path, raster: Path, crop_px: int, folder: Path, cache: Path, precision: str,
                      backend: str, rounds: int = 2, threads: int | None = None) -> dict[str, Any]:
    """The headline ratio again on a ``crop_px`` crop, interleaved: per round the baseline (as Deepness runs it),
    the baseline without spinning, and our default path end to end. On a shared CPU the phases of the main run see
    different loads; here they alternate, and the no-spinning baseline shows how much of the ratio is the
    baseline's spinning losing to other jobs."""
    from osgeo import gdal

    crop = folder / f"crop_{crop_px}.tif"
    gdal.Translate(str(crop), str(raster), srcWin=[0, 0, crop_px, crop_px])
    runs = []
    for _ in range(rounds):
        row: dict[str, Any] = {"load_before": load()}
        row["baseline_s"] = baseline(model, crop, threads=threads)["wall_s"]
        row["ours_s"] = engine_subprocess(model, crop, folder / "crop_ours.tif", precision, backend=backend,
                                          cache_dir=cache, threads=threads)["seconds"]
        row["baseline_no_spinning_s"] = baseline(model, crop, spinning=False, threads=threads)["wall_s"]
        row["load_after"] = load()
        runs.append(row)

    def median(key: str) -> float:
        return float(np.median([r[key] for r in runs]))

    return {"crop_px": crop_px, "path": f"{backend} {precision}", "runs": runs,
            "speedup_vs_baseline": round(median("baseline_s") / median("ours_s"), 3),
            "speedup_vs_baseline_no_spinning": round(median("baseline_no_spinning_s") / median("ours_s"), 3)}


def spinning(model: Path, window_px: int, repeats: int = 3) -> dict[str, Any]:
    """Per-window seconds with onnxruntime's intra-op spinning on and off, interleaved (a shared CPU punishes it)."""
    import onnxruntime as ort

    from lcgan_qgis.core.model.precision import int8_sibling
    from lcgan_qgis.core.model.runtime import default_threads

    sessions = {}
    for spin in ("1", "0"):
        options = ort.SessionOptions()  # session_options() but for the spinning entry
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = default_threads()
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", spin)
        sessions[spin] = ort.InferenceSession(str(int8_sibling(model)), options, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).uniform(-1, 1, (1, 3, window_px, window_px)).astype(np.float32)
    times: dict[str, list[float]] = {"1": [], "0": []}
    for s in sessions.values():
        s.run(None, {"input": x})
    for _ in range(repeats):
        for spin, s in sessions.items():
            times[spin].append(timed(lambda s=s: s.run(None, {"input": x}))[1]["wall_s"])
    return {"window_px": window_px, "spinning_on_s": min(times["1"]), "spinning_off_s": min(times["0"]),
            "load": load()}


def path_rows(model: Path, raster: Path, folder: Path, cache: Path, tile_effect: bool = False) -> dict[str, Any]:
    """One row per backend x precision this machine offers for ``model`` on a real ``raster``: Mpx/s end to end,
    pure inference, overhead ratio, and fidelity against the reference (onnxruntime fp32) at the same windows.
    ``tile_effect`` adds the reference at the model's own tile size (InstanceNorm's window effect, docs/engine.md).
    """
    from lcgan_qgis.core.model.precision import CPU_ORDER, REFERENCE
    from lcgan_qgis.core.model.runtime import load_model

    with load_model(model, "cpu", precision="fp32", backend="onnxruntime") as reference:
        contract = reference.contract
    land_cover = contract.direction.value == "rgb_to_landcover"
    rows: dict[str, Any] = {}
    outputs: dict[str, Path] = {}
    for choice in (REFERENCE, *(p for p in CPU_ORDER if p != REFERENCE)):
        out = folder / f"{model.stem}_{choice.backend}_{choice.precision}.tif"
        try:
            rows[choice.key] = engine_subprocess(model, raster, out, choice.precision, backend=choice.backend,
                                                 cache_dir=cache, pure=True)
            outputs[choice.key] = out
        except RuntimeError as exc:  # (a path this machine cannot run: say why, measure the others)
            last = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
            rows[choice.key] = {"skipped": last}
    if tile_effect:
        out = folder / f"{model.stem}_fp32_tile.tif"
        rows["onnxruntime/fp32@tile"] = engine_subprocess(model, raster, out, "fp32", contract.tile_size_px,
                                                          backend="onnxruntime")
        outputs["onnxruntime/fp32@tile"] = out
    expected = read(outputs[REFERENCE.key])
    valid = expected[0] != (contract.scheme.nodata_code if land_cover else 0)
    base = rows[REFERENCE.key]["seconds"]
    for key, out in outputs.items():
        got = read(out)
        row = rows[key]
        if land_cover:
            row["class_agreement_vs_fp32"] = round(float((got == expected)[:, valid].mean()), 4)
        else:
            row["psnr_db_vs_fp32"] = psnr(expected[:, valid], got[:, valid])
        row["speedup_vs_fp32"] = round(base / row["seconds"], 3)
        out.unlink(missing_ok=True)
    return {"model": str(model), "input": raster.name, "rows": rows}


def seams(models: dict[str, Path], folder: Path, cache: Path | None = None) -> dict[str, Any]:
    """Seam ratio of the engine's output (Zion NLCD -> imagery, default path) vs naive independent 256 px tiles."""
    from lcgan_qgis.core.model.contract import to_uint8
    from lcgan_qgis.core.model.runtime import load_model
    from lcgan_qgis.core.rasters.gdal_io import GdalReader
    from lcgan_qgis.core.rasters.raster import Window
    from lcgan_qgis.core.run.noise import position_noise
    from lcgan_qgis.core.run.preprocess import landcover_to_onehot
    from lcgan_qgis.core.run.settings import DEFAULT_WINDOW_PX
    from lcgan_qgis.core.run.tiling import fit_window, make_tiling

    model_path = models["landcover_to_rgb"]
    source = ZION / "nlcd2011_on_landsat_grid.tif"
    ours = folder / "seams_ours.tif"
    run = engine_subprocess(model_path, source, ours, cache_dir=cache)
    img = read(ours)
    _b, height, width = img.shape
    model = load_model(model_path, "cpu", precision=run["precision"], backend=run["backend"], cache_dir=cache)
    multiple, overlap = model.contract.size_multiple_px, model.contract.overlap_px
    tiling = make_tiling(height, width, fit_window(height, DEFAULT_WINDOW_PX, overlap, multiple),
                         fit_window(width, DEFAULT_WINDOW_PX, overlap, multiple), overlap, multiple)
    rows = grid_lines(tiling.rows.starts, tiling.rows.extent, height)
    cols = grid_lines(tiling.cols.starts, tiling.cols.extent, width)
    with GdalReader(source) as reader:
        codes = reader.read(Window(0, 0, width, height), (1,))[0]
        nodata = reader.info.nodata[0]
    onehot, valid = landcover_to_onehot(model.contract, codes, nodata, str(source))
    if model.contract.noise_channels:  # the same position-keyed noise the engine feeds (whole-raster positions)
        noise = position_noise(Window(0, 0, width, height), model.contract.noise_channels, model.contract.noise_seed)
        onehot = np.concatenate([onehot, noise])
    naive = np.zeros((3, height, width), np.uint8)
    tile = model.contract.tile_size_px
    for y in range(0, height, tile):
        for x in range(0, width, tile):
            y0, x0 = min(y, height - tile), min(x, width - tile)  # the last tiles stay inside the raster
            out = model.run(onehot[None, :, y0:y0 + tile, x0:x0 + tile])[0]
            naive[:, y:y0 + tile, x:x0 + tile] = np.maximum(to_uint8(out), 1)[:, y - y0:, x - x0:]
    naive[:, ~valid] = 0
    naive_lines = list(range(tile, max(height, width), tile))
    return {
        "input": source.name, "model": str(model_path), "precision": run["precision"], "backend": run["backend"],
        "naive_tile_px": tile,
        "ours_grid": {"rows": rows, "cols": cols, "windows": tiling.count},
        "seam_ratio": round(seam_ratio(img, rows, cols), 4),
        "seam_ratio_naive": round(seam_ratio(naive, [r for r in naive_lines if r < height],
                                             [c for c in naive_lines if c < width]), 4),
        "seam_ratio_ours_on_naive_grid": round(seam_ratio(img, [r for r in naive_lines if r < height],
                                                          [c for c in naive_lines if c < width]), 4),
        "run": run,
    }


def rss(folder: Path, small: Path, large: Path) -> dict[str, Any]:
    """Peak RSS of the engine (per-pixel model) over two raster sizes, each in its own process."""
    model = pointwise_model(folder)
    out = {}
    for name, raster in (("small", small), ("large", large)):
        out[name] = engine_subprocess(model, raster, folder / f"rss_{name}.tif", precision="fp32",
                                      backend="onnxruntime")
        out[name]["raster"] = raster.name
        (folder / f"rss_{name}.tif").unlink(missing_ok=True)
    return out
