"""Command line: ``python -m training train|export|ablation|evaluate|finetune|relight ...`` (docs/training.md)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from lcgan_qgis.core.choices import WEIGHT_STORAGES
from lcgan_qgis.core.errors import LcganError

from .config import OUTPUT_FILTERS, ConfigError, TrainConfig


def _train(args: argparse.Namespace) -> int:
    from .trainer import Trainer

    config = TrainConfig.load(args.config, args.overrides)
    trainer = Trainer(config, args.data, args.run_dir)
    step = trainer.fit()
    print(f"trained to step {step}/{config.total_steps}; run folder {args.run_dir}")
    if trainer.stop_signal is not None:  # stopped early by SIGINT/SIGTERM: resumable, but not finished
        return 128 + trainer.stop_signal
    return 0


def _export(args: argparse.Namespace) -> int:
    from .export import export_checkpoint

    checkpoint = args.checkpoint or Path(args.run_dir) / "checkpoints" / "last.pt"
    results = export_checkpoint(checkpoint, args.out, args.model_version, args.tile_size_px, args.overlap_px,
                                args.weight_storage, args.output_filter)
    print(json.dumps({"out": str(args.out), "max_abs_diff": results}, indent=2))
    return 0


def _ablation(args: argparse.Namespace) -> int:
    from .ablation import markdown_table, run_variants, study, summarize

    if not args.summarize_only:
        run_variants(args.data, args.out_dir, args.variants or list(study(args.study).variants), args.seeds,
                     args.overrides, study_name=args.study, parallel=args.parallel)
    print(markdown_table(summarize(args.out_dir, args.max_step, args.data if args.measure else None)))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train (or resume) a CycleGAN run")
    train.add_argument("--config", type=Path, default=None, help="TOML config (default: built-in defaults)")
    train.add_argument("--data", type=Path, default=None, help="folder that relative raster paths are read from")
    train.add_argument("--run-dir", type=Path, default=Path("runs/default"),
                       help="run folder; an existing one with a checkpoint resumes (default: runs/default)")
    train.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. optim.lr=1e-4")
    train.set_defaults(func=_train)

    export = sub.add_parser("export", help="export both generators of a checkpoint to ONNX")
    export.add_argument("--run-dir", type=Path, default=Path("runs/default"), help="run folder (uses its last.pt)")
    export.add_argument("--checkpoint", type=Path, default=None, help="a checkpoint file instead of --run-dir")
    export.add_argument("--out", type=Path, required=True, help="output folder for the two .onnx files")
    export.add_argument("--model-version", default="", help="model_version in the contract")
    export.add_argument("--tile-size-px", type=int, default=None, help="recommended tile (default: training crop)")
    export.add_argument("--overlap-px", type=int, default=None, help="recommended overlap (default: tile / 8)")
    export.add_argument("--weight-storage", choices=WEIGHT_STORAGES, default="fp32",
                        help="fp32 (default: the exact weights) or fp16: weights stored as float16 behind Casts to "
                             "float32, half the file, compute still float32 (the bundled models)")
    export.add_argument("--output-filter", choices=OUTPUT_FILTERS, default=None,
                        help="override model.output_filter of the checkpoint's config for the exported image "
                             "generator (checkerboard_null: docs/training.md); default: the config's")
    export.set_defaults(func=_export)

    ablation = sub.add_parser("ablation", help="ablation studies: short runs per variant, RGB->LC accuracy table")
    ablation.add_argument("--study", default="dlc", help="dlc (default), recipe or unpaired (training/ablation.py)")
    ablation.add_argument("--parallel", type=int, default=1, help="runs at a time (one torch thread each)")
    ablation.add_argument("--data", type=Path, required=True, help="the Zion sample folder")
    ablation.add_argument("--out-dir", type=Path, default=Path("runs/ablation_dlc"), help="folder of the runs")
    ablation.add_argument("--variants", nargs="*", default=None, help="subset of variants (default: all)")
    ablation.add_argument("--seeds", nargs="*", type=int, default=[0], help="seeds (default: 0)")
    ablation.add_argument("--summarize-only", action="store_true", help="only read finished runs")
    ablation.add_argument("--max-step", type=int, default=0, help="compare the runs up to this step (0: all)")
    ablation.add_argument("--measure", action="store_true",
                          help="also export and measure each run on the held-out area (training/evaluation/quick.py)")
    ablation.add_argument("overrides", nargs="*", metavar="key=value", help="extra overrides for every run")
    ablation.set_defaults(func=_ablation)

    from .evaluation.report import add_arguments as add_evaluate_arguments
    from .evaluation.report import run as run_evaluate

    evaluate = sub.add_parser("evaluate", help="evaluate exported models on a paired area (training/evaluation/)")
    add_evaluate_arguments(evaluate)
    evaluate.set_defaults(func=run_evaluate)

    from .finetune.cli import add_arguments as add_finetune_arguments
    from .finetune.cli import run as run_finetune

    finetune = sub.add_parser("finetune", help="adapt a model folder to your region and class scheme "
                                               "(training/finetune, docs/training.md)")
    add_finetune_arguments(finetune)
    finetune.set_defaults(func=run_finetune)

    from .relight import add_arguments as add_relight_arguments
    from .relight import run as run_relight

    relight = sub.add_parser("relight", help="a terrain-aware land cover -> RGB model from a map-only one: its "
                                             "imagery lit by the DEM's hillshade (training/relight.py)")
    add_relight_arguments(relight)
    relight.set_defaults(func=run_relight)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except (LcganError, ConfigError) as exc:
        logging.getLogger("training").error("%s", exc)
        return 2


if __name__ == "__main__":
    sys.exit(main())
