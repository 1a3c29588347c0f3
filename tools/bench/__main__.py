"""``python -m tools.bench`` (``make bench``); ``engine-run`` is the subprocess one engine run uses."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from . import __doc__ as package_doc
from .measurements import engine_run
from .measures import REPO, ZION
from .models_dir import bench_models, print_models
from .report import bench, print_table, scale_out_only


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench", description=package_doc.split("\n")[0])
    sub = parser.add_subparsers(dest="command")
    parser.add_argument("--out", type=Path, default=None,
                        help="JSON report (default docs/bench.json; with --models docs/bench_models.json)")
    parser.add_argument("--size", type=int, default=4096, help="side of the speed raster")
    parser.add_argument("--trained", type=Path, default=None,
                        help="folder with trained rgb_to_landcover.onnx and landcover_to_rgb.onnx for the fidelity "
                             "and seam measurements (default: resources/models when present)")
    parser.add_argument("--models", type=Path, default=None,
                        help="only the headline speed measurement (baseline vs our default path, interleaved "
                             "check) for both generators of this model folder, at --size")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of the interleaved check (with --models)")
    parser.add_argument("--threads", type=int, default=None,
                        help="with --models: intra-op threads of both the baseline and ours (default: every core)")
    parser.add_argument("--large-factor", type=int, default=2,
                        help="the RSS run's large raster is size x factor per side (2: 4x the pixels)")
    parser.add_argument("--scale-out-size", type=int, default=8192, help="side of the scale-out row's raster")
    scale = sub.add_parser("scale-out", help="only the scale-out row (Dask, 1 vs 2 local workers vs the engine); "
                                             "merged into --out")
    scale.add_argument("--tile-px", type=int, default=4096)
    scale.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    one = sub.add_parser("engine-run", help="(internal) one engine run, JSON on stdout")
    one.add_argument("--model", required=True)
    one.add_argument("--raster", required=True)
    one.add_argument("--output", required=True)
    one.add_argument("--precision", default="auto")
    one.add_argument("--window", type=int, default=None)
    one.add_argument("--backend", default="auto")
    one.add_argument("--cache-dir", default=None)
    one.add_argument("--pure", action="store_true", help="also time the model alone over the same windows")
    one.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.command == "engine-run":
        print(json.dumps(engine_run(args.model, args.raster, args.output, args.precision, args.window, args.backend,
                                    args.cache_dir, args.pure, args.threads)))
        return 0
    if not ZION.is_dir():
        print(f"error: the Zion sample is missing ({ZION}); the benchmark needs its real rasters", file=sys.stderr)
        return 2
    if args.models is not None:
        out = args.out or REPO / "docs" / "bench_models.json"
        with tempfile.TemporaryDirectory(prefix="lcgan-bench-") as tmp:
            print_models(bench_models(args.models, out, args.size, Path(tmp), args.rounds, args.threads))
        print(f"wrote {out}")
        return 0
    args.out = args.out or REPO / "docs" / "bench.json"
    if args.command == "scale-out":
        with tempfile.TemporaryDirectory(prefix="lcgan-bench-") as tmp:
            row = scale_out_only(args.out, args.scale_out_size, Path(tmp), args.tile_px, args.device)
        print(json.dumps({k: v for k, v in row.items() if not isinstance(v, dict)}, indent=1))
        print(f"wrote the scale_out row of {args.out}")
        return 0
    with tempfile.TemporaryDirectory(prefix="lcgan-bench-") as tmp:
        report = bench(args.out, args.size, args.large_factor, Path(tmp), args.trained, args.scale_out_size)
    print_table(report)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
