"""``gates``: measure every backend x precision against fp32 and write the fidelity record ``auto`` reads."""

from __future__ import annotations

import argparse

from .common import add_calibration_options, check_windows, model_command

NAME = "gates"


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = model_command(sub, NAME, "measure every backend x precision against fp32 on calibration windows and "
                           "write the fidelity record M.fidelity.json that precision 'auto' reads",
                           "the float model (its int8 sibling is measured too)")
    parser.add_argument("--calibration", required=True, help="a real raster of the model's input kind")
    add_calibration_options(parser)


def run(args: argparse.Namespace) -> int:
    check_windows(args)
    from ..core.model.precision import record_path
    from ..tooling.gates import measure_gates, summary

    record = measure_gates(args.model, args.calibration, windows=args.windows, elevation=args.elevation)
    print(f"{record_path(args.model)}: fidelity vs fp32 on {record.calibration}\n{summary(record)}")
    return 0
