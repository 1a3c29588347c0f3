"""The D_lc ablation: what the class discriminator sees for fake maps, judged by RGB->LC accuracy on Zion.

Each variant is a short, identical training run (same seed, data, schedule and size) that differs only in
``model.fake_lc_for_d`` and the real-map smoothing/noise; every run validates RGB->LC on the paired Landsat-grid land
cover at each epoch end (``val.csv``). Runs go one after another in child processes at low priority (``nice``) with
one torch thread, so a main training run keeps its speed. ``summarize`` reads the runs back into a JSON + Markdown
table (``docs/ablation_dlc.md`` quotes it).
"""

from __future__ import annotations

import csv
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

VARIANTS: dict[str, list[str]] = {
    "softmax": ["model.fake_lc_for_d=softmax"],
    "gumbel_st": ["model.fake_lc_for_d=gumbel_st"],
    "softmax_smoothed_reals": ["model.fake_lc_for_d=softmax", "model.real_lc_smoothing=0.2",
                               "model.real_lc_noise=0.1"],
}

# Small enough for minutes per run on one CPU thread; identical for every variant.
BASE_OVERRIDES = [
    "model.ngf=16", "model.n_blocks=6", "model.ndf=32", "data.crop_size_px=64", "data.num_workers=0",
    "optim.steps_per_epoch=250", "optim.epochs=8", "optim.epochs_decay=4", "runtime.threads=1",
    "runtime.progress=false", "runtime.checkpoint_every_steps=1000",
    "data.val_image=landsat8_rgb.tif", "data.val_landcover=nlcd2011_on_landsat_grid.tif",
]


def run_variants(data_dir: str | Path, out_dir: str | Path, variants: list[str], seeds: list[int],
                 extra: list[str], nice: int = 15) -> None:
    """Train each (variant, seed) in its own child process, one after another (resumes finished/partial runs)."""
    for seed in seeds:
        for name in variants:
            if name not in VARIANTS:
                raise ValueError(f"Unknown ablation variant {name!r}; choose from {sorted(VARIANTS)}.")
            run_dir = Path(out_dir) / f"{name}_seed{seed}"
            cmd = ["nice", "-n", str(nice), sys.executable, "-m", "training", "train", "--data", str(data_dir),
                   "--run-dir", str(run_dir), *BASE_OVERRIDES, *VARIANTS[name], f"runtime.seed={seed}", *extra]
            log.info("ablation run %s: %s", run_dir.name, " ".join(cmd))
            start = time.monotonic()
            env = {**os.environ, "OMP_NUM_THREADS": "1"}
            with open(Path(out_dir) / f"{run_dir.name}.log", "a", encoding="utf-8") as logfile:
                subprocess.run(cmd, check=True, stdout=logfile, stderr=subprocess.STDOUT, env=env)
            log.info("ablation run %s done in %.0f s", run_dir.name, time.monotonic() - start)


def summarize(out_dir: str | Path, max_step: int = 0) -> dict[str, Any]:
    """Per run: final and best validation accuracy/mIoU, steps, wall seconds; written to ``summary.json``.

    ``max_step`` > 0 compares the runs at equal length (validations and losses after it are ignored).
    """
    out_dir = Path(out_dir)
    runs = {}
    for run_dir in sorted(p for p in out_dir.iterdir() if (p / "val.csv").is_file()):
        with open(run_dir / "val.csv", newline="", encoding="utf-8") as f:
            val = [r for r in csv.DictReader(f) if not max_step or int(r["step"]) <= max_step]
        with open(run_dir / "losses.csv", newline="", encoding="utf-8") as f:
            losses = [r for r in csv.DictReader(f) if not max_step or int(r["step"]) <= max_step]
        last = val[-1]
        best = max(val, key=lambda r: float(r["accuracy"]))
        runs[run_dir.name] = {
            "steps": int(last["step"]),
            "final_accuracy": float(last["accuracy"]), "final_mean_iou": float(last["mean_iou"]),
            "best_accuracy": float(best["accuracy"]), "best_step": int(best["step"]),
            "mean_accuracy_last_3_epochs": sum(float(r["accuracy"]) for r in val[-3:]) / len(val[-3:]),
            "baseline_accuracy": float(last["baseline_accuracy"]),
            "train_seconds": float(losses[-1]["seconds"]) if losses else 0.0,
            "accuracy_by_epoch": [float(r["accuracy"]) for r in val],
        }
    summary = {"base_overrides": BASE_OVERRIDES, "variants": VARIANTS, "max_step": max_step, "runs": runs}
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return summary


def markdown_table(summary: dict[str, Any]) -> str:
    lines = ["| run | steps | final acc. | final mIoU | mean acc. last 3 epochs | best acc. (step) | baseline |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, r in summary["runs"].items():
        lines.append(f"| {name} | {r['steps']} | {r['final_accuracy']:.3f} | {r['final_mean_iou']:.3f} | "
                     f"{r['mean_accuracy_last_3_epochs']:.3f} | {r['best_accuracy']:.3f} ({r['best_step']}) | "
                     f"{r['baseline_accuracy']:.3f} |")
    return "\n".join(lines)
