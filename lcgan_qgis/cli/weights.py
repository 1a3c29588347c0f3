"""``weights``: store a model's weights as float16 or float32, in place, checked against the file as it was."""

from __future__ import annotations

import argparse
import sys

from ..core.choices import WEIGHT_STORAGES
from .common import add_calibration_options, check_windows, model_command, need_onnx, printable

NAME = "weights"


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = model_command(sub, NAME, "store a model's weights as float16 (half the file; compute stays float32) or "
                           "float32, in place; checked against the file as it was first",
                           "an lcgan .onnx model (float or int8)")
    parser.add_argument("--storage", choices=WEIGHT_STORAGES, default="fp16",
                        help="fp16 (default): large weight tensors as float16 behind Casts to float32; fp32: back to "
                             "float32 initializers (with the float16 values)")
    parser.add_argument("--calibration", default=None,
                        help="a real raster of the model's input kind: the conversion is measured on its calibration "
                             "windows and refused below the fidelity gate (without it: a random input, max |diff| "
                             "only)")
    add_calibration_options(parser)


def run(args: argparse.Namespace) -> int:
    check_windows(args)
    need_onnx(NAME)
    from ..tooling.weight_storage import convert_file

    report = convert_file(args.model, args.storage, calibration=args.calibration, elevation=args.elevation,
                          windows=args.windows)
    print(printable(report.summary))
    for record in report.stale_records:
        print(printable(f"note: {record} measured the previous file and no longer applies to it; re-measure it "
                        "with `python -m lcgan_qgis gates`"), file=sys.stderr)
    return 0
