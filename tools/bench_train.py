"""`make bench-train`: seconds per CycleGAN training step, plain fp32 eager vs the default fast path, in one run.

Every variant is a real :class:`training.trainer.Trainer` (same seed, data and networks) doing real steps; the steps
of the variants are interleaved (A, B, A, B, ...) so that other load on the machine hits them alike. We report
wall seconds and process CPU seconds per step (medians): CPU seconds are what the speed-up is judged on, since the
2 shared cores of our machine make wall time noisy.

    python -m tools.bench_train --out docs/bench_train.json [--steps 6] [--threads 1] [--ngf 64 --crop 256]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from lcgan_qgis.core.storage.files import AtomicFile
from training.config import TrainConfig
from training.trainer import Trainer

VARIANTS = {
    "fp32_eager": ["runtime.amp=none", "runtime.channels_last=off", "runtime.compile=false"],
    "default": [],  # amp=auto (bf16), channels_last=auto (off on CPU, on for CUDA)
    "bf16_channels_last": ["runtime.amp=bf16", "runtime.channels_last=on"],
}
ZION = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "zion"


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def synthetic_data(folder: Path, size: int) -> None:
    """Real GeoTIFFs with random content, for machines without the Zion sample."""
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin

    rng = np.random.default_rng(0)
    codes = np.array([11, 21, 22, 23, 31, 41, 42, 43, 52, 71, 81, 82, 90, 95], dtype=np.uint8)
    profile = {"driver": "GTiff", "width": size, "height": size, "crs": "EPSG:32612",
               "transform": from_origin(300000, 4150000, 30, 30)}
    with rasterio.open(folder / "nlcd2011.tif", "w", count=1, dtype="uint8", nodata=255, **profile) as ds:
        ds.write(np.kron(rng.choice(codes, (size // 16, size // 16)), np.ones((16, 16), np.uint8)), 1)
    with rasterio.open(folder / "landsat8_rgb.tif", "w", count=3, dtype="uint16", nodata=0, **profile) as ds:
        ds.write(rng.integers(5000, 20000, (3, size, size), dtype=np.uint16))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("docs/bench_train.json"))
    parser.add_argument("--data", type=Path, default=ZION, help="Zion sample (synthetic rasters when absent)")
    parser.add_argument("--steps", type=int, default=6, help="timed steps per variant")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per variant first")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: steady on shared cores)")
    parser.add_argument("--ngf", type=int, default=64)
    parser.add_argument("--n-blocks", type=int, default=9)
    parser.add_argument("--crop", type=int, default=256)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--device", default="cpu", help="cpu | cuda (timings synchronise the GPU)")
    parser.add_argument("--variants", nargs="*", default=["fp32_eager", "default"], choices=list(VARIANTS),
                        help="bf16_channels_last shows why channels_last is off on CPU (several times slower)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    common = [f"model.ngf={args.ngf}", f"model.n_blocks={args.n_blocks}", f"data.crop_size_px={args.crop}",
              f"optim.batch_size={args.batch}", "data.num_workers=0", "runtime.progress=false",
              f"runtime.threads={args.threads}", f"runtime.device={args.device}", "optim.steps_per_epoch=1000"]
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data
        if not (data / "nlcd2011.tif").is_file():
            data = Path(tmp) / "data"
            data.mkdir()
            synthetic_data(data, max(512, 2 * args.crop))
        trainers = {}
        for name in args.variants:
            config = TrainConfig.load(None, [*common, *VARIANTS[name]])
            trainers[name] = Trainer(config, data, Path(tmp) / name)
        batches = {name: t.loader() for name, t in trainers.items()}
        sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
        wall: dict[str, list[float]] = {n: [] for n in trainers}
        cpu: dict[str, list[float]] = {n: [] for n in trainers}
        for round_ in range(args.warmup + args.steps):
            for name, trainer in trainers.items():
                batch = next(batches[name])
                sync()
                w0, c0 = time.perf_counter(), time.process_time()
                trainer.train_step(batch)
                sync()
                w1, c1 = time.perf_counter(), time.process_time()
                if round_ >= args.warmup:
                    wall[name].append(w1 - w0)
                    cpu[name].append(c1 - c0)
            print(f"round {round_ + 1}/{args.warmup + args.steps}: "
                  + ", ".join(f"{n} {wall[n][-1]:.2f} s" for n in trainers if wall[n]))
    result = {
        "what": f"seconds per CycleGAN training step (G step + D step), batch {args.batch}, "
                f"{args.crop}x{args.crop} px, ngf {args.ngf}, {args.n_blocks} blocks, {args.threads} thread(s)",
        "machine": {"cpu": cpu_name(), "threads": args.threads, "logical_cpus": os.cpu_count(),
                    "torch": torch.__version__,
                    "gpu": torch.cuda.get_device_name() if args.device.startswith("cuda") else None},
        "steps": args.steps, "warmup": args.warmup,
        "variants": {n: {"overrides": VARIANTS[n], "median_wall_s": statistics.median(wall[n]),
                         "images_per_s": args.batch / statistics.median(wall[n]),
                         "median_cpu_s": statistics.median(cpu[n]), "wall_s": wall[n], "cpu_s": cpu[n]}
                     for n in trainers},
    }
    if "fp32_eager" in trainers and "default" in trainers:
        v = result["variants"]
        result["speedup_default_vs_fp32_cpu_s"] = v["fp32_eager"]["median_cpu_s"] / v["default"]["median_cpu_s"]
        result["speedup_default_vs_fp32_wall_s"] = v["fp32_eager"]["median_wall_s"] / v["default"]["median_wall_s"]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with AtomicFile(args.out) as tmp:
        tmp.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    summary = {n: round(r["median_cpu_s"], 3) for n, r in result["variants"].items()}
    print(f"CPU s/step {summary}; speed-up of the default over fp32 eager: "
          f"{result.get('speedup_default_vs_fp32_cpu_s', float('nan')):.2f}x -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
