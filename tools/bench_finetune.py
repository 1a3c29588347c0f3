"""Seconds per fine-tuning step for each choice (precision, frozen encoder, crop, image model trained or not),
and the warm-up of the first steps: ``python -m tools.bench_finetune --data ../shared/data/zion [--steps 6]``.

Every variant runs the real :class:`training.finetune.run.FineTune` step on the Zion 7-group example (one torch
thread) from a fresh start; the first step is reported apart from the median of the rest, which is the warm-up that
``make train`` pays (oneDNN creates its kernels for each new shape and dtype on first use).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

VARIANTS = {
    "fp32": {"precision": "fp32"},
    "bf16": {"precision": "bf16"},
    "bf16 frozen encoder": {"precision": "bf16", "freeze_encoder": True},
    "bf16 96 px crops": {"precision": "bf16", "crop": 96},
    "bf16 RGB->LC only": {"precision": "bf16", "image_weight": 0.0},
    "bf16 RGB->LC only, frozen encoder": {"precision": "bf16", "image_weight": 0.0, "freeze_encoder": True},
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, required=True, help="the Zion sample folder")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS))
    args = parser.parse_args(argv)
    from training.finetune.example import build
    from training.finetune.run import FineTune, Settings

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        paths = build(args.data, tmp)
        for name in args.variants:
            settings = Settings(base=str(Path(__file__).resolve().parents[1] / "resources" / "models"),
                                imagery=[str(paths["imagery"])], out=str(Path(tmp) / name.replace(" ", "_")),
                                landcover=[str(paths["landcover"])], scheme=str(paths["scheme"]),
                                train_area=str(paths["train_area"]), val_area=str(paths["val_area"]),
                                steps=args.steps, **VARIANTS[name])  # type: ignore[arg-type]
            ft = FineTune(settings)
            times = []
            for _ in range(args.steps):
                t0 = time.perf_counter()
                ft.train_step()
                ft.step += 1
                times.append(time.perf_counter() - t0)
            rows.append({"variant": name, "first_step_s": round(times[0], 2),
                         "median_step_s": round(statistics.median(times[1:]), 2),
                         "px_per_step": settings.batch * ft.sampler.size ** 2})
            sys.stdout.write(json.dumps(rows[-1]) + "\n")
            sys.stdout.flush()
    import os

    sys.stdout.write(json.dumps({"load_average": os.getloadavg()}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
