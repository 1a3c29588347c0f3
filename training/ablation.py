"""Ablation studies: short, identical training runs that differ in a few config keys, judged on held-out ground.

Each study names a base config, base overrides (size, schedule, validation) and its variants. Every run validates
RGB->LC on the paired Landsat-grid land cover at each epoch end (``val.csv``; the recipe studies validate inside
the held-out south, ``data.val_areas``). Runs go in child processes at low priority (``nice``) with one torch
thread each, ``parallel`` at a time. ``summarize`` reads the runs back into a JSON + Markdown table.

* ``dlc``: what the class discriminator sees for fake maps (``docs/ablation_dlc.md``).
* ``recipe``: generator upsampling, normalisation, noise input, low-pass pixel losses, augmentation, on the bundled
  semi-supervised recipe (``docs/recipe.md``).
* ``unpaired``: remedies that let the pure unpaired CycleGAN learn NLCD's correspondence (``docs/recipe.md``).
* ``second``: issue 22's label-map generators against the bundled recipe at equal steps (``docs/recipe.md``).
"""

from __future__ import annotations

import csv
import json
import logging
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError

log = logging.getLogger(__name__)

HELDOUT = "training/configs/zion_areas/heldout_south.geojson"
VALIDATE_ON_ZION = ["data.val_image=landsat8_rgb.tif", "data.val_landcover=nlcd2011_on_landsat_grid.tif"]
# 600 steps of batch 1 at 128 px at constant lr: ~15 minutes per run on one thread of our CPU, two at a time.
SHORT_SCHEDULE = ["optim.steps_per_epoch=150", "optim.epochs=4", "optim.epochs_decay=0", "runtime.threads=1",
                  "runtime.progress=false", "runtime.checkpoint_every_steps=150", f"data.val_areas={HELDOUT}",
                  *VALIDATE_ON_ZION]
# The reference CycleGAN generator and training, spelled out (the base config may hold another recipe).
REFERENCE_RECIPE = ["model.upsample=transpose", "model.norm=instance", "model.noise_channels=0",
                    "loss.pixel_lowpass_px=1", "loss.cycle_image_noise=0", "data.jitter_gain=0",
                    "data.jitter_offset=0", "data.jitter_gamma=0", "data.scale_jitter=0", "optim.batch_size=1"]
RECIPE_FULL = ["model.upsample=nearest", "model.norm=instance_running", "model.noise_channels=4",
               "loss.pixel_lowpass_px=4", "loss.cycle_image_noise=0.1", "data.jitter_gain=0.2",
               "data.jitter_offset=0.05", "data.jitter_gamma=0.2", "data.scale_jitter=0.25"]
# Batch 4 for a quarter of the steps: the same windows (pixels) as 600 steps of batch 1.
BATCH4 = ["optim.batch_size=4", "optim.steps_per_epoch=38"]
RECIPE_CHOSEN = [*RECIPE_FULL, "model.norm=batch", *BATCH4]  # = training/configs/zion_bundled.toml
UNPAIRED = ["loss.lambda_paired_lc=0", "loss.lambda_paired_rgb=0"]
# Issue 22's equal-step runs: 200 steps of batch 4 at constant lr, validated at steps 100 and 200, bf16.
SECOND_SCHEDULE = ["optim.steps_per_epoch=100", "optim.epochs=2", "optim.epochs_decay=0", "runtime.threads=1",
                   "runtime.amp=bf16", "runtime.progress=false", "runtime.checkpoint_every_steps=100"]
SECOND_GENERATION = ["model.generator=spade", "model.n_blocks=6", "model.rgb2lc_generator=unet",
                     "model.discriminator=multiscale", "model.d_sees_map=true", "loss.lambda_feature_match=10",
                     "model.output_filter=checkerboard_null"]  # = training/configs/zion_spade.toml


@dataclass(frozen=True)
class Study:
    """A base config file (relative to the repository; None = defaults), overrides for every run, and variants."""

    config: str | None
    base_overrides: tuple[str, ...]
    variants: dict[str, tuple[str, ...]] = field(default_factory=dict)


STUDIES: dict[str, Study] = {
    "dlc": Study(None, (
        "model.ngf=16", "model.n_blocks=6", "model.ndf=32", "data.crop_size_px=64", "data.num_workers=0",
        "optim.steps_per_epoch=250", "optim.epochs=8", "optim.epochs_decay=4", "runtime.threads=1",
        "runtime.progress=false", "runtime.checkpoint_every_steps=1000", *VALIDATE_ON_ZION,
    ), {
        "softmax": ("model.fake_lc_for_d=softmax",),
        "gumbel_st": ("model.fake_lc_for_d=gumbel_st",),
        "softmax_smoothed_reals": ("model.fake_lc_for_d=softmax", "model.real_lc_smoothing=0.2",
                                   "model.real_lc_noise=0.1"),
    }),
    "recipe": Study("training/configs/zion_bundled.toml", (*SHORT_SCHEDULE, *REFERENCE_RECIPE), {
        "reference": (),
        "resize_conv": ("model.upsample=nearest",),
        "resize_running_norm": ("model.upsample=nearest", "model.norm=instance_running"),
        "full": tuple(RECIPE_FULL),
        "full_batchnorm_b4": tuple(RECIPE_CHOSEN),
    }),
    "second": Study("training/configs/zion_bundled.toml", tuple(SECOND_SCHEDULE), {
        "baseline_resnet": (),
        "cand_spade_msd_unet": tuple(SECOND_GENERATION),
    }),
    "unpaired": Study("training/configs/zion_bundled.toml", (*SHORT_SCHEDULE, *UNPAIRED), {
        "unpaired_reference": tuple(REFERENCE_RECIPE),
        "unpaired_recipe": tuple(RECIPE_CHOSEN),
        "unpaired_recipe_strong_noise": (*RECIPE_CHOSEN, "loss.cycle_image_noise=0.3", "data.jitter_gain=0.3",
                                         "data.jitter_gamma=0.3"),
    }),
}
#: The D_lc study's variants and base, under the names earlier code and docs use.
VARIANTS = {k: list(v) for k, v in STUDIES["dlc"].variants.items()}
BASE_OVERRIDES = list(STUDIES["dlc"].base_overrides)
REPO = Path(__file__).resolve().parent.parent


def study(name: str) -> Study:
    if name not in STUDIES:
        raise ConfigError(f"Unknown ablation study {name!r}; choose from {sorted(STUDIES)}.")
    return STUDIES[name]


def run_variants(data_dir: str | Path, out_dir: str | Path, variants: list[str], seeds: list[int],
                 extra: list[str], nice: int = 15, study_name: str = "dlc", parallel: int = 1) -> None:
    """Train each (variant, seed) in its own child process, ``parallel`` at a time (resumes partial runs)."""
    st = study(study_name)
    for name in variants:
        if name not in st.variants:
            raise ConfigError(f"Unknown variant {name!r} of study {study_name!r}; choose from {sorted(st.variants)}.")
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    jobs = [(name, seed) for seed in seeds for name in variants]

    def one(job: tuple[str, int]) -> None:
        name, seed = job
        run_dir = Path(out_dir) / f"{name}_seed{seed}"
        config = ["--config", str(REPO / st.config)] if st.config else []
        cmd = ["nice", "-n", str(nice), sys.executable, "-m", "training", "train", *config, "--data", str(data_dir),
               "--run-dir", str(run_dir), *st.base_overrides, *st.variants[name], f"runtime.seed={seed}", *extra]
        log.info("ablation run %s: %s", run_dir.name, " ".join(cmd))
        start = time.monotonic()
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        with open(Path(out_dir) / f"{run_dir.name}.log", "a", encoding="utf-8") as logfile:
            subprocess.run(cmd, check=True, stdout=logfile, stderr=subprocess.STDOUT, env=env, cwd=REPO)
        log.info("ablation run %s done in %.0f s", run_dir.name, time.monotonic() - start)

    with ThreadPoolExecutor(max(1, parallel)) as pool:
        for future in [pool.submit(one, job) for job in jobs]:
            future.result()


def summarize(out_dir: str | Path, max_step: int = 0, measure_data: str | Path | None = None) -> dict[str, Any]:
    """Per run: final and best validation accuracy/mIoU, steps, wall seconds; written to ``summary.json``.

    ``max_step`` > 0 compares the runs at equal length (validations and losses after it are ignored). With
    ``measure_data`` (the Zion folder), each run's last checkpoint is also exported and measured on the held-out
    area (:func:`training.evaluation.quick.measure_run`: accuracy through the engine, window dependence, checkerboard
    index, texture); runs that already have ``measures.json`` are not measured again.
    """
    out_dir = Path(out_dir)
    runs = {}
    for run_dir in sorted(p for p in out_dir.iterdir() if (p / "val.csv").is_file()):
        measures = None
        if measure_data is not None:
            path = run_dir / "measures.json"
            if path.is_file():
                measures = json.loads(path.read_text(encoding="utf-8"))
            else:
                from .evaluation.quick import measure_run

                measures = measure_run(run_dir, measure_data, REPO / HELDOUT)
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
            "batch_size": _config_value(run_dir, "batch_size"),
            "measures": measures,
        }
    summary = {"max_step": max_step, "runs": runs,
               "studies": {k: {"config": v.config, "base_overrides": list(v.base_overrides),
                               "variants": {n: list(o) for n, o in v.variants.items()}} for k, v in STUDIES.items()}}
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return summary


def _config_value(run_dir: Path, key: str) -> Any:
    """A value of the run's ``config.toml`` by key name (the first section that has it), or None."""
    import tomllib

    path = run_dir / "config.toml"
    if not path.is_file():
        return None
    config = tomllib.loads(path.read_text(encoding="utf-8"))
    return next((values[key] for values in config.values() if isinstance(values, dict) and key in values), None)


def markdown_table(summary: dict[str, Any]) -> str:
    measured = any(r.get("measures") for r in summary["runs"].values())
    head = "| run | steps x batch | final val. acc. | final mIoU | mean acc. last 3 | best acc. (step) | baseline |"
    rule = "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
    if measured:
        head += (" engine acc. 256 / 512 px | majority | LC changed 256 vs 512 | RGB PSNR 256 vs 512 |"
                 " checkerboard index | local std gen. / real |")
        rule += " ---: | ---: | ---: | ---: | ---: | ---: |"
    lines = [head, rule]
    for name, r in summary["runs"].items():
        line = (f"| {name} | {r['steps']} x {r.get('batch_size') or 1} | {r['final_accuracy']:.3f} | "
                f"{r['final_mean_iou']:.3f} | {r['mean_accuracy_last_3_epochs']:.3f} | {r['best_accuracy']:.3f} "
                f"({r['best_step']}) | {r['baseline_accuracy']:.3f} |")
        m = r.get("measures")
        if measured and m:
            acc = m["heldout_accuracy"]
            line += (f" {acc['256']:.3f} / {acc['512']:.3f} | {m['heldout_majority_baseline']:.3f} | "
                     f"{100 * m['lc_changed_256_512']:.1f} % | {m['rgb_psnr_256_512_db']:.1f} dB | "
                     f"{m['checkerboard_index']:.2f} | {m['local_std_generated']:.3f} / {m['local_std_real']:.3f} |")
        elif measured:
            line += " | | | | | |"
        lines.append(line)
    return "\n".join(lines)
