"""``quantize``: an int8 (QDQ, per-channel) copy of a model, calibrated on a raster, then its fidelity record."""

from __future__ import annotations

import argparse
import sys

from ..core.choices import WEIGHT_STORAGES
from .common import add_calibration_options, check_windows, model_command, need_onnx
from .gates import run as run_gates

NAME = "quantize"


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = model_command(sub, NAME, "write an int8 (QDQ, per-channel) copy of a model, calibrated on a raster")
    parser.add_argument("--calibration", required=True, help="a real raster of the model's input kind")
    parser.add_argument("--output", required=True)
    add_calibration_options(parser)
    parser.add_argument("--no-gates", action="store_true", help="do not measure the fidelity record afterwards")
    parser.add_argument("--int8-upsampling", action="store_true",
                        help="quantise the upsampling path too (faster; kept in float by default: check the gates)")
    parser.add_argument("--int8-first", action="store_true",
                        help="quantise the first convolution too (it reads the raw input: a one-hot map quantises "
                             "well, imagery less so; check the gates)")
    parser.add_argument("--int8-pads", action="store_true",
                        help="quantise the padding between convolutions too (OpenVINO pads int8 tensors instead of "
                             "bf16 ones; check the gates)")
    parser.add_argument("--weight-storage", choices=WEIGHT_STORAGES, default=None,
                        help="how the int8 copy stores its float layers' weights (default: as the model stores its "
                             "own)")


def run(args: argparse.Namespace) -> int:
    check_windows(args)
    need_onnx(NAME)
    from ..tooling.quantize import quantize_model

    report = quantize_model(args.model, args.calibration, args.output, windows=args.windows,
                            elevation=args.elevation, storage=args.weight_storage,
                            float_upsampling=not args.int8_upsampling, float_first=not args.int8_first,
                            int8_pads=args.int8_pads)
    print(f"{report.path}: int8 model written ({report.path.stat().st_size / 1e6:.1f} MB); {report.summary}")
    if args.no_gates:
        return 0
    from ..core.model.precision import int8_sibling

    if int8_sibling(args.model).resolve() != report.path.resolve():
        print(f"note: {report.path.name} is not named {int8_sibling(args.model).name}, so auto will not use it and "
              "no fidelity record was measured", file=sys.stderr)
        return 0
    return run_gates(args)
