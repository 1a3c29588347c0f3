"""``python -m training finetune``: adapt the bundled (or any lcgan) models to your region and class scheme."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lcgan_qgis.core.resources import resources_dir

log = logging.getLogger("training.finetune")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--base", type=Path, default=None, help="model folder to start from (default: the bundled models)")
    p.add_argument("--imagery", nargs="+", required=True, help="imagery raster(s) of your region")
    p.add_argument("--landcover", nargs="*", default=[], help="land-cover raster(s) (any grid; warped, nearest)")
    p.add_argument("--labels", default="", help="training polygons (GPKG/GeoJSON/SHP) instead of or besides land cover")
    p.add_argument("--class-field", default="class", help="the polygons' field holding a class code or name")
    p.add_argument("--scheme", default="", help="class scheme JSON (default: the raster's colour table, else the "
                                                 "base model's)")
    p.add_argument("--train-area", default="", help="polygons the training windows come from")
    p.add_argument("--val-area", default="", help="polygons the validation is scored in (default: an automatic "
                                                   "spatial split, written out as GeoJSON)")
    budget = p.add_mutually_exclusive_group(required=True)
    budget.add_argument("--minutes", type=float, default=0.0, help="training budget in minutes")
    budget.add_argument("--steps", type=int, default=0, help="training budget in steps")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="cpu", help="torch device (default: cpu)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--bands", type=int, nargs=3, default=[1, 2, 3], help="imagery bands read as R G B")
    p.add_argument("--crop", type=int, default=128, help="training window side in px (default 128)")
    p.add_argument("--batch", type=int, default=4, help="windows per step (default 4)")
    p.add_argument("--lr", type=float, default=2e-4, help="Adam learning rate (default 2e-4)")
    p.add_argument("--image-weight", type=float, default=1.0,
                   help="weight of the image model's paired low-pass L1 (0: train only RGB -> land cover)")
    p.add_argument("--landcover-weight", type=float, default=1.0,
                   help="weight of the land-cover model's cross-entropy (0: train only land cover -> RGB)")
    p.add_argument("--adversarial-weight", type=float, default=0.0,
                   help="image model: weight of a discriminator that sees the map (texture; 0: none, e.g. 1)")
    p.add_argument("--diversity-weight", type=float, default=0.0,
                   help="image model: reward two noise draws (seeds) for painting different texture (0: none, e.g. 1)")
    p.add_argument("--feature-match-weight", type=float, default=0.0,
                   help="with --adversarial-weight: pix2pixHD's feature matching against each window's own imagery "
                        "(0: none; pix2pixHD's 10 blurred the texture here, docs/recipe.md)")
    p.add_argument("--class-balance", type=float, default=0.0,
                   help="weight each class's cross-entropy by frequency**-B (0: none, 0.5: square-root balancing, "
                        "so rare classes such as developed land get predicted)")
    p.add_argument("--elevation", default="", help="a DEM of the region (any grid and CRS): the model folder also "
                                                   "gets a terrain-aware land cover -> RGB model lit by it")
    p.add_argument("--freeze-encoder", action="store_true", help="train only the residual blocks and the decoder")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto",
                   help="training arithmetic (auto: bf16 where the CPU or GPU computes it natively)")
    p.add_argument("--val-every-s", type=float, default=60.0, help="seconds between validation points (default 60)")
    p.add_argument("--no-int8", action="store_true", help="skip the int8 copies and their gates")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--progress-lines", action="store_true",
                   help="print one 'LCGAN_PROGRESS {json}' line per step on stdout (what the plugin reads)")
    p.add_argument("--out", type=Path, required=True, help="output model folder (an existing run's resumes)")


def progress_printer(settings: Any) -> Callable[[int, dict[str, float], float, float], None]:
    """A progress callback printing one ``LCGAN_PROGRESS {json}`` line per step (the plugin's watcher reads it)."""

    def show(step: int, losses: dict[str, float], accuracy: float, elapsed_s: float) -> None:
        fraction = max(step / settings.steps if settings.steps else 0.0,
                       elapsed_s / (60 * settings.minutes) if settings.minutes else 0.0)
        line = {"step": step, "fraction": round(min(1.0, fraction), 4), "minutes": round(elapsed_s / 60, 3),
                "losses": {k: round(v, 5) for k, v in losses.items()}, "accuracy": accuracy}
        sys.stdout.write("LCGAN_PROGRESS " + json.dumps(line) + "\n")
        sys.stdout.flush()

    return show


def run(args: argparse.Namespace) -> int:
    from .outputs import write_outputs
    from .run import FineTune, Settings

    t0 = time.monotonic()
    settings = Settings(
        base=str(args.base or resources_dir() / "models"), imagery=[str(p) for p in args.imagery], out=str(args.out),
        landcover=[str(p) for p in args.landcover], labels=str(args.labels), class_field=args.class_field,
        scheme=str(args.scheme), train_area=str(args.train_area), val_area=str(args.val_area), minutes=args.minutes,
        steps=args.steps, device=args.device, threads=args.threads, bands=list(args.bands), crop=args.crop,
        batch=args.batch, lr=args.lr, image_weight=args.image_weight,
        landcover_weight=args.landcover_weight, adversarial_weight=args.adversarial_weight,
        diversity_weight=args.diversity_weight,
        feature_match_weight=args.feature_match_weight, freeze_encoder=args.freeze_encoder,
        class_balance=args.class_balance, elevation=str(args.elevation),
        precision=args.precision, val_every_s=args.val_every_s, seed=args.seed, int8=not args.no_int8)
    ft = FineTune(settings)
    ft.train(progress_printer(settings) if args.progress_lines else None)
    if ft.stop_signal is not None:
        return 128 + ft.stop_signal
    report = write_outputs(ft, time.monotonic() - t0)
    verdict = report["verdict"]
    log.info("validation accuracy %.4f (majority %.4f, base model %.4f): beats majority %s, beats base %s; model "
             "folder %s", verdict["accuracy"], verdict["majority_accuracy"], verdict["base_model_accuracy"],
             verdict["beats_majority"], verdict["beats_base_model"], args.out)
    print(json.dumps({"out": str(args.out), **verdict, **report["speed"]}, indent=2))
    return 0
