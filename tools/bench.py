"""``make bench``: speed, memory and seams of the translation engine, measured in ONE run -> docs/bench.json.

What it measures (docs/engine.md explains the choices):

* speed on a 4096 x 4096 8-bit RGB raster (Zion Landsat, 8-bit stretched and mirrored to size) with the full-size
  CycleGAN generator (3 -> 14, ngf 64, 9 blocks, random weights; cached under ~/.cache/lcgan/bench):
  - a Deepness-like baseline: plain fp32 onnxruntime over 256 px tiles at 15 % overlap, centre-crop stitching;
  - our default path end to end (``translate`` with default options; ``load_model``'s default precision), in a
    subprocess so its peak RSS is its own, then the pure onnxruntime time of exactly the windows it ran;
* a fp32 GEMM probe (onnxruntime MatMul, the same MLAS kernels as the convolutions) and the engine's achieved
  GFLOP/s as a fraction of it;
* peak RSS of the engine over 4096^2 and a larger raster (a VRT mosaic, default 8192^2 = 4x the pixels) with a
  per-pixel model: the engine's own buffers do not depend on the model (onnxruntime's arena for the real model is
  reported separately);
* seams on a real input (Zion NLCD -> imagery with the full-size 14 -> 3 generator): mean |difference| of
  neighbouring output pixels across tile-grid lines / away from them, naive independent tiles vs our blending;
* each low-precision path (int8 QDQ) against fp32 on the real Zion rasters: speed-up and fidelity (class agreement,
  PSNR), for the same windows and against fp32 at the model's own tile size.

The machine's load is recorded with every phase; compare ratios measured in this one run.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("LCGAN_BENCH_CACHE", Path.home() / ".cache" / "lcgan" / "bench"))
ZION = REPO.parent / "shared" / "data" / "zion"
MODEL_TAG = "v1-seed0"  # bump when the benchmark generator or its export changes
TILE_PX, OVERLAP_PX = 256, 32  # the full-size model's contract (overlap = tile // 8, as training exports it)
BASELINE_TILE_PX, BASELINE_OVERLAP = 256, 0.15
UTM12N_GEOTRANSFORM = (300000.0, 30.0, 0.0, 4150000.0, 0.0, -30.0)

log = logging.getLogger("bench")


# -- small helpers ---------------------------------------------------------------------------------------------
def load() -> float:
    """1-minute load average (the CPU is shared: every phase records it)."""
    return round(os.getloadavg()[0], 2)


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss it is not inherited across fork + exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed(fn: Callable[[], Any]) -> tuple[Any, dict[str, float]]:
    """Run ``fn``; returns its result and wall seconds, process CPU seconds and the load before/after."""
    before, cpu0, t0 = load(), cpu_seconds(), time.perf_counter()
    result = fn()
    return result, {"wall_s": round(time.perf_counter() - t0, 3), "cpu_s": round(cpu_seconds() - cpu0, 3),
                    "load_before": before, "load_after": load()}


def seam_ratio(img: np.ndarray, row_lines: Sequence[int], col_lines: Sequence[int], margin: int = 4) -> float:
    """Mean |difference| between neighbouring pixels across grid lines / the same at least ``margin`` px away.

    ``img`` is ``(bands, rows, cols)``; a column line ``x`` separates columns ``x - 1`` and ``x``.
    """
    data = img.astype(np.float64)
    across, away = [], []
    for axis, lines in ((2, col_lines), (1, row_lines)):
        diff = np.abs(np.diff(data, axis=axis))
        profile = diff.mean(axis=(0, 1) if axis == 2 else (0, 2))  # one value per neighbour pair
        inner = [x for x in lines if 0 < x < data.shape[axis]]
        keep = np.ones(profile.size, bool)
        for x in inner:
            keep[max(0, x - 1 - margin):x + margin] = False
        across.append(profile[[x - 1 for x in inner]])
        away.append(profile[keep])
    return float(np.concatenate(across).mean() / np.concatenate(away).mean())


def grid_lines(starts: Sequence[int], extent: int, length: int) -> list[int]:
    """Every interior window edge and overlap middle of one axis of the engine's grid."""
    lines = set()
    for i, s in enumerate(starts):
        lines.update({s, s + extent})
        if i:
            lines.add((s + starts[i - 1] + extent) // 2)
    return sorted(x for x in lines if 0 < x < length)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else round(10 * np.log10(255.0 ** 2 / mse), 2)


def read(path: Path) -> np.ndarray:
    from osgeo import gdal

    data = gdal.Open(str(path)).ReadAsArray()
    return data[None] if data.ndim == 2 else data


# -- inputs ----------------------------------------------------------------------------------------------------
def generator_flops_per_px() -> float:
    """FLOPs (2 x multiply-adds) per output pixel of the full-size generator, counted on a 256 px forward pass."""
    import torch

    from training.models import ResnetGenerator

    net = ResnetGenerator(3, 14, ngf=64, n_blocks=9, final="logits")
    macs = [0]

    def hook(module: torch.nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        k = module.kernel_size[0] * module.kernel_size[1] // module.groups
        if isinstance(module, torch.nn.ConvTranspose2d):
            macs[0] += inputs[0][0].numel() * module.out_channels * k
        else:
            macs[0] += output[0].numel() * module.in_channels * k

    for m in net.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
            m.register_forward_hook(hook)
    with torch.no_grad():
        net(torch.zeros(1, 3, TILE_PX, TILE_PX))
    return 2.0 * macs[0] / TILE_PX ** 2


def zion_radiometry() -> Any:
    from lcgan_qgis.core.contract import Radiometry
    from lcgan_qgis.core.gdal_io import GdalReader
    from lcgan_qgis.core.preprocess import image_percentiles

    with GdalReader(ZION / "landsat8_rgb.tif") as reader:
        low, high, _n = image_percentiles(reader, (1, 2, 3), reader.info.nodata, (2.0, 98.0))
    return Radiometry(mode="percentile", low=low, high=high)


def full_models() -> dict[str, Path]:
    """The full-size generators (random weights, seed 0) and their int8 siblings, built once and cached."""
    import torch

    from lcgan_qgis.core.contract import Direction, ModelContract
    from lcgan_qgis.core.resources import default_scheme_path
    from lcgan_qgis.core.runtime import int8_sibling
    from lcgan_qgis.core.scheme import ClassScheme
    from lcgan_qgis.tooling.quantize import quantize_model
    from training.export import export_generator
    from training.models import ResnetGenerator

    CACHE.mkdir(parents=True, exist_ok=True)
    paths = {}
    for direction, (c_in, c_out, final), calibration in (
            (Direction.RGB_TO_LANDCOVER, (3, 14, "logits"), "landsat8_rgb.tif"),
            (Direction.LANDCOVER_TO_RGB, (14, 3, "tanh"), "nlcd2011_on_landsat_grid.tif")):
        path = CACHE / f"full_{direction.value}_{MODEL_TAG}.onnx"
        if not path.exists():
            torch.manual_seed(0)
            contract = ModelContract(direction=direction, scheme=ClassScheme.load(default_scheme_path()),
                                     radiometry=zion_radiometry(), tile_size_px=TILE_PX, overlap_px=OVERLAP_PX,
                                     gsd_m=30.0, model_version=f"bench-{MODEL_TAG}",
                                     description="full-size CycleGAN generator, random weights (benchmark only)")
            export_generator(ResnetGenerator(c_in, c_out, ngf=64, n_blocks=9, final=final), contract, path)
        if not int8_sibling(path).exists():
            quantize_model(path, ZION / calibration, int8_sibling(path))
        paths[direction.value] = path
    return paths


def trained_models(folder: Path | None) -> dict[str, Path] | None:
    """Trained models (``folder`` or the bundled resources/models) copied to the cache with int8 siblings made
    there; None when there are none. Random weights exaggerate int8 error (near-tie logits) and hide seams
    (noise-like output), so fidelity and seams are also measured on a trained model."""
    import hashlib
    import shutil

    from lcgan_qgis.core.resources import resources_dir
    from lcgan_qgis.core.runtime import int8_sibling
    from lcgan_qgis.tooling.quantize import quantize_model

    folder = folder or resources_dir() / "models"
    names = ("rgb_to_landcover", "landcover_to_rgb")
    if not all((folder / f"{n}.onnx").is_file() for n in names):
        return None
    digest = hashlib.sha256(b"".join((folder / f"{n}.onnx").read_bytes() for n in names)).hexdigest()[:10]
    target = CACHE / f"trained-{digest}"
    target.mkdir(parents=True, exist_ok=True)
    calibration = {"rgb_to_landcover": "landsat8_rgb.tif", "landcover_to_rgb": "nlcd2011_on_landsat_grid.tif"}
    paths = {}
    for name in names:
        path = target / f"{name}.onnx"
        if not path.exists():
            shutil.copyfile(folder / f"{name}.onnx", path)
        if not int8_sibling(path).exists():
            quantize_model(path, ZION / calibration[name], int8_sibling(path))
        paths[name] = path
    return paths


def synthetic_raster(folder: Path, size: int) -> Path:
    """A ``size`` x ``size`` 8-bit RGB GeoTIFF: Zion Landsat stretched to 1..255 and mirrored to size."""
    from osgeo import gdal, osr

    path = folder / f"zion8bit_{size}.tif"
    if path.exists():
        return path
    src = read(ZION / "landsat8_rgb.tif").astype(np.float32)
    valid = src[0] > 0
    lo, hi = (np.percentile(src[:, valid], q, axis=1)[:, None, None] for q in (2, 98))
    img = np.clip((src - lo) / (hi - lo) * 254 + 1, 1, 255).astype(np.uint8)
    img[:, ~valid] = 128
    reps_r, reps_c = size // img.shape[1] + 1, size // img.shape[2] + 1
    row = np.concatenate([img if j % 2 == 0 else img[:, :, ::-1] for j in range(reps_c)], axis=2)
    big = np.concatenate([row if i % 2 == 0 else row[:, ::-1] for i in range(reps_r)], axis=1)[:, :size, :size]
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32612)
    ds = gdal.GetDriverByName("GTiff").Create(str(path), size, size, 3, gdal.GDT_Byte,
                                              ["TILED=YES", "COMPRESS=DEFLATE"])
    ds.SetGeoTransform(UTM12N_GEOTRANSFORM)
    ds.SetProjection(srs.ExportToWkt())
    for b in range(3):
        ds.GetRasterBand(b + 1).WriteArray(big[b])
    ds = None
    return path


def mosaic_vrt(tile: Path, tile_px: int, factor: int) -> Path:
    """A VRT of ``factor`` x ``factor`` copies of ``tile`` (a big raster without the disk space)."""
    size = tile_px * factor
    path = tile.with_name(f"mosaic_{size}.vrt")
    bands = []
    for b in range(1, 4):
        sources = "".join(
            f'<SimpleSource><SourceFilename relativeToVRT="1">{tile.name}</SourceFilename><SourceBand>{b}</SourceBand>'
            f'<SrcRect xOff="0" yOff="0" xSize="{tile_px}" ySize="{tile_px}"/>'
            f'<DstRect xOff="{c * tile_px}" yOff="{r * tile_px}" xSize="{tile_px}" ySize="{tile_px}"/></SimpleSource>'
            for r in range(factor) for c in range(factor))
        bands.append(f'<VRTRasterBand dataType="Byte" band="{b}">{sources}</VRTRasterBand>')
    gt = ", ".join(repr(v) for v in UTM12N_GEOTRANSFORM)
    path.write_text(f'<VRTDataset rasterXSize="{size}" rasterYSize="{size}"><GeoTransform>{gt}</GeoTransform>'
                    + "".join(bands) + "</VRTDataset>")
    return path


def pointwise_model(folder: Path) -> Path:
    """A per-pixel 3 -> 14 model (1x1 conv + sigmoid) with the full model's contract, for memory runs: cheap, so
    the engine's own memory shows (softmax over channels is ~10x slower than the conv in onnxruntime's CPU EP)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from lcgan_qgis.core.runtime import load_model

    path = folder / "pointwise_rgb_to_landcover.onnx"
    contract = load_model(full_models()["rgb_to_landcover"], "cpu", precision="fp32").contract
    rng = np.random.default_rng(0)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["input", "W", "B"], ["s"], kernel_shape=[1, 1]),
         helper.make_node("Sigmoid", ["s"], ["output"])], "pointwise",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 14, "H", "W"])],
        initializer=[numpy_helper.from_array(rng.normal(0, 1, (14, 3, 1, 1)).astype(np.float32), "W"),
                     numpy_helper.from_array(np.zeros(14, np.float32), "B")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    helper.set_model_props(model, contract.to_metadata())
    onnx.save(model, str(path))
    return path


# -- measurements ----------------------------------------------------------------------------------------------
def gemm_probe(n: int = 2048, repeats: int = 3) -> dict[str, float]:
    """fp32 GEMM GFLOP/s through onnxruntime's MatMul (MLAS, the convolutions' kernels), best of ``repeats``."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from lcgan_qgis.core.runtime import default_threads, session_options

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


def baseline(model_path: Path, raster: Path) -> dict[str, Any]:
    """Deepness-like: fp32 onnxruntime (default session options) over 256 px tiles at 15 % overlap, one tile per
    run, whole output in memory, centre-crop stitching (each tile keeps its middle; the raster edge is zero-padded)."""
    import onnxruntime as ort
    from osgeo import gdal

    session = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    ds = gdal.Open(str(raster))
    width, height = ds.RasterXSize, ds.RasterYSize
    tile = BASELINE_TILE_PX
    margin = int(tile * BASELINE_OVERLAP) // 2
    stride = tile - 2 * margin
    out = np.zeros((height, width), np.uint8)

    def run() -> int:
        count = 0
        for y in range(0, height - 2 * margin, stride):
            for x in range(0, width - 2 * margin, stride):
                w, h = min(tile, width - x), min(tile, height - y)
                pixels = np.zeros((3, tile, tile), np.float32)
                pixels[:, :h, :w] = ds.ReadAsArray(x, y, w, h)
                probs = session.run(None, {"input": (pixels / 127.5 - 1.0)[None]})[0][0]
                classes = probs.argmax(axis=0).astype(np.uint8)
                top, left = (0 if y == 0 else margin), (0 if x == 0 else margin)
                out[y + top:y + min(h, tile - margin), x + left:x + min(w, tile - margin)] = \
                    classes[top:min(h, tile - margin), left:min(w, tile - margin)]
                count += 1
        return count

    tiles, timing = timed(run)
    return {"tiles": tiles, "tile_px": tile, "overlap": BASELINE_OVERLAP, **timing,
            "mpx_per_s": round(width * height / 1e6 / timing["wall_s"], 4)}


def engine_run(model: str, raster: str, output: str, precision: str, window_px: int | None) -> dict[str, Any]:
    """One ``translate`` with onnxruntime's own time summed per call (runs in a subprocess: see ``main``)."""
    from lcgan_qgis.core.engine import TranslateOptions, translate
    from lcgan_qgis.core.gdal_io import GdalReader
    from lcgan_qgis.core.runtime import Model, load_model

    loaded = load_model(model, "cpu", precision=precision)
    ort_seconds = [0.0]
    shapes: list[tuple[int, ...]] = []

    class Timed(Model):
        def run(self, batch: np.ndarray) -> np.ndarray:
            t0 = time.perf_counter()
            out = super().run(batch)
            ort_seconds[0] += time.perf_counter() - t0
            shapes.append(tuple(batch.shape))
            return out

    timed_model = Timed(**{f.name: getattr(loaded, f.name) for f in dataclasses.fields(loaded)})
    with GdalReader(raster) as reader:
        result, timing = timed(lambda: translate(timed_model, reader, output, TranslateOptions(window_px=window_px)))
    return {"seconds": round(result.seconds, 3), "tiles": result.tiles, "mpx_per_s": round(result.mpx_per_s, 4),
            "ort_seconds_inside": round(ort_seconds[0], 3), "window_shapes": sorted({str(s) for s in shapes}),
            "batch_shape": list(shapes[0]), "precision": loaded.precision, "model_file": loaded.path.name,
            "peak_rss_mb": peak_rss_mb(), **timing}


def engine_subprocess(model: Path, raster: Path, output: Path, precision: str = "auto",
                      window_px: int | None = None) -> dict[str, Any]:
    """``engine_run`` in a fresh interpreter, so its peak RSS is its own."""
    args = [sys.executable, "-m", "tools.bench", "engine-run", "--model", str(model), "--raster", str(raster),
            "--output", str(output), "--precision", precision] + (["--window", str(window_px)] if window_px else [])
    done = subprocess.run(args, cwd=REPO, capture_output=True, text=True, check=False,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    if done.returncode != 0:
        raise RuntimeError(f"engine run failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def pure_onnxruntime(model: Path, precision: str, batch_shape: Sequence[int], count: int) -> dict[str, Any]:
    """onnxruntime alone over ``count`` batches of ``batch_shape`` (what the engine ran), no I/O."""
    from lcgan_qgis.core.runtime import load_model

    loaded = load_model(model, "cpu", precision=precision)
    x = np.random.default_rng(0).uniform(-1, 1, batch_shape).astype(np.float32)
    loaded.run(x)  # warm-up (the engine's first window pays this too, inside its e2e time)
    _, timing = timed(lambda: [loaded.run(x) for _ in range(count)])
    return {"batches": count, "batch_shape": list(batch_shape), **timing}


def spinning(model: Path, window_px: int, repeats: int = 3) -> dict[str, Any]:
    """Per-window seconds with onnxruntime's intra-op spinning on and off, interleaved (a shared CPU punishes it)."""
    import onnxruntime as ort

    from lcgan_qgis.core.runtime import default_threads, int8_sibling

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


def precision_paths(models: dict[str, Path], folder: Path) -> dict[str, Any]:
    """fp32 vs int8 on the real Zion rasters: speed-up and fidelity, same windows and vs the model's tile size."""
    from lcgan_qgis.core.engine import DEFAULT_WINDOW_PX
    from lcgan_qgis.core.runtime import load_model

    inputs = {"rgb_to_landcover": ZION / "landsat8_rgb.tif",
              "landcover_to_rgb": ZION / "nlcd2011_on_landsat_grid.tif"}
    out: dict[str, Any] = {}
    for direction, model in models.items():
        runs = {}
        tile = load_model(model, "cpu", precision="fp32").contract.tile_size_px
        for name, precision, window in (("fp32", "fp32", None), ("int8", "int8", None),
                                        ("fp32_tile", "fp32", tile)):
            runs[name] = engine_subprocess(model, inputs[direction], folder / f"{direction}_{name}.tif", precision,
                                           window)
        a, b, c = (read(folder / f"{direction}_{n}.tif") for n in ("fp32", "int8", "fp32_tile"))
        valid = a[0] != (255 if direction == "rgb_to_landcover" else 0)
        if direction == "rgb_to_landcover":
            fidelity = {"class_agreement_int8_vs_fp32": round(float((a == b)[:, valid].mean()), 4),
                        "class_agreement_int8_vs_fp32_tile": round(float((b == c)[:, valid].mean()), 4),
                        "class_agreement_fp32_vs_fp32_tile": round(float((a == c)[:, valid].mean()), 4)}
        else:
            fidelity = {"psnr_db_int8_vs_fp32": psnr(a[:, valid], b[:, valid]),
                        "psnr_db_int8_vs_fp32_tile": psnr(b[:, valid], c[:, valid]),
                        "psnr_db_fp32_vs_fp32_tile": psnr(a[:, valid], c[:, valid])}
        out[direction] = {"input": inputs[direction].name, "model": str(model), "window_px": DEFAULT_WINDOW_PX,
                          "model_tile_px": tile,
                          "speedup_int8_vs_fp32": round(runs["fp32"]["seconds"] / runs["int8"]["seconds"], 3),
                          **fidelity, "runs": runs}
    out["bf16_fp16"] = ("not offered: onnxruntime's CPU execution provider has no bf16 or fp16 convolution kernels "
                        "on x86-64 (MLAS fp16 and its bf16 fast-math GEMM are ARM64-only), so a converted model only "
                        "adds casts around fp32 kernels")
    return out


def seams(models: dict[str, Path], folder: Path) -> dict[str, Any]:
    """Seam ratio of the engine's output (Zion NLCD -> imagery, default path) vs naive independent 256 px tiles."""
    from lcgan_qgis.core.contract import to_uint8
    from lcgan_qgis.core.engine import DEFAULT_WINDOW_PX
    from lcgan_qgis.core.gdal_io import GdalReader
    from lcgan_qgis.core.preprocess import landcover_to_onehot
    from lcgan_qgis.core.raster import Window
    from lcgan_qgis.core.runtime import load_model
    from lcgan_qgis.core.tiling import fit_window, make_tiling

    model_path = models["landcover_to_rgb"]
    source = ZION / "nlcd2011_on_landsat_grid.tif"
    ours = folder / "seams_ours.tif"
    run = engine_subprocess(model_path, source, ours)
    img = read(ours)
    _b, height, width = img.shape
    model = load_model(model_path, "cpu", precision=run["precision"])
    multiple, overlap = model.contract.size_multiple_px, model.contract.overlap_px
    tiling = make_tiling(height, width, fit_window(height, DEFAULT_WINDOW_PX, overlap, multiple),
                         fit_window(width, DEFAULT_WINDOW_PX, overlap, multiple), overlap, multiple)
    rows = grid_lines(tiling.rows.starts, tiling.rows.extent, height)
    cols = grid_lines(tiling.cols.starts, tiling.cols.extent, width)
    with GdalReader(source) as reader:
        codes = reader.read(Window(0, 0, width, height), (1,))[0]
        nodata = reader.info.nodata[0]
    onehot, valid = landcover_to_onehot(model.contract, codes, nodata, str(source))
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
        "input": source.name, "model": str(model_path), "precision": run["precision"], "naive_tile_px": tile,
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
        out[name] = engine_subprocess(model, raster, folder / f"rss_{name}.tif", precision="fp32")
        out[name]["raster"] = raster.name
        (folder / f"rss_{name}.tif").unlink(missing_ok=True)
    return out


# -- the run ---------------------------------------------------------------------------------------------------
def bench(out_path: Path, size: int, large_factor: int, work: Path, trained_dir: Path | None) -> dict[str, Any]:
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
    width = max(len(r[0]) for r in rows)
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>22}  {note}")
    print(f"total {d['total_s']:.0f} s; load at start {report['machine']['load_at_start'][0]:.2f}, "
          f"at end {d['load_at_end'][0]:.2f}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "bench.json")
    parser.add_argument("--size", type=int, default=4096, help="side of the speed raster")
    parser.add_argument("--trained", type=Path, default=None,
                        help="folder with trained rgb_to_landcover.onnx and landcover_to_rgb.onnx for the fidelity "
                             "and seam measurements (default: resources/models when present)")
    parser.add_argument("--large-factor", type=int, default=2,
                        help="the RSS run's large raster is size x factor per side (2: 4x the pixels)")
    one = sub.add_parser("engine-run", help="(internal) one engine run, JSON on stdout")
    one.add_argument("--model", required=True)
    one.add_argument("--raster", required=True)
    one.add_argument("--output", required=True)
    one.add_argument("--precision", default="auto")
    one.add_argument("--window", type=int, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.command == "engine-run":
        print(json.dumps(engine_run(args.model, args.raster, args.output, args.precision, args.window)))
        return 0
    if not ZION.is_dir():
        print(f"error: the Zion sample is missing ({ZION}); the benchmark needs its real rasters", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="lcgan-bench-") as tmp:
        report = bench(args.out, args.size, args.large_factor, Path(tmp), args.trained)
    print_table(report)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
