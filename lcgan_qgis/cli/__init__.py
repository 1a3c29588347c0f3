"""Command line: ``python -m lcgan_qgis translate|translate-mosaic|info|quantize|gates|weights ...`` (no QGIS needed).

Examples::

    python -m lcgan_qgis translate --model rgb_to_landcover.onnx --input scene.tif --output landcover.tif
    python -m lcgan_qgis translate --model landcover_to_rgb_terrain.onnx --input nlcd.tif --elevation dem.tif \
        --output rgb.tif --seed 7
    python -m lcgan_qgis info rgb_to_landcover.onnx
    python -m lcgan_qgis quantize --model M.onnx --calibration scene.tif --output M.int8.onnx
    python -m lcgan_qgis gates --model M.onnx --calibration scene.tif
    python -m lcgan_qgis translate-mosaic --model M.onnx --input conus.tif --output-dir out/ --local-workers 4
    python -m lcgan_qgis weights --model M.onnx --storage fp16 --calibration scene.tif

One module per command (``add_parser`` and ``run``). ``translate`` runs the job QGIS runs
(:func:`lcgan_qgis.core.run.job.run_translation`): the same output checks, and the same resolution policy (a raster
more than 10 % off the model's ground sample distance is translated at the model's GSD, read through GDAL's
resampling as QGIS reads it, and the result resampled back onto its own grid; ``--no-gsd-check`` switches it off).
``translate-mosaic`` runs the same job's rules on a Dask cluster (:func:`lcgan_qgis.mosaic.job.run_mosaic`); both
build the same :class:`~lcgan_qgis.core.run.settings.RunSettings` from the same options
(:func:`.common.run_settings`).

Errors the user can fix (lcgan's own) end the program with exit code 2 and one line on stderr, no traceback;
Ctrl-C cancels the run cleanly (no output file, no temporary file; a mosaic keeps its finished tiles) with exit
code 130, SIGTERM and SIGHUP with 143 and 129. The job's log lines go to stdout, its notes (``note: ...``) and errors
to stderr.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence
from types import FrameType

from ..core.errors import LcganError
from . import gates, info, mosaic, quantize, scenario, translate, weights
from .common import STOP_SIGNALS, printable

EXIT_ERROR = 2
EXIT_CANCELED = 130  # 128 + SIGINT; a run stopped by SIGTERM or SIGHUP exits with 128 + that signal

#: The commands, in the order ``--help`` lists them.
COMMANDS = {command.NAME: command for command in (translate, mosaic, scenario, info, quantize, gates, weights)}


class Stopped(BaseException):
    """Raised in the main thread by a stop signal outside a translation (quantize, info), so cleanup runs."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lcgan_qgis", description=__doc__.split("\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log details (window grid, provider choice)")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS.values():
        command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")

    def stop(signum: int, _frame: FrameType | None) -> None:
        raise Stopped(signum)

    previous = {signum: signal.signal(signum, stop) for signum in STOP_SIGNALS if signum != signal.SIGINT}
    try:
        return COMMANDS[args.command].run(args)
    except LcganError as exc:
        print(printable(f"error: {exc}"), file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("cancelled: nothing was written (SIGINT)", file=sys.stderr)
        return EXIT_CANCELED
    except Stopped as exc:
        print(f"cancelled: nothing was written ({signal.Signals(exc.signum).name})", file=sys.stderr)
        return 128 + exc.signum
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


__all__ = ["COMMANDS", "EXIT_CANCELED", "EXIT_ERROR", "Stopped", "build_parser", "main", "printable"]
