"""``translate``: one raster through the job QGIS runs (:func:`lcgan_qgis.core.run.job.run_translation`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from .common import add_run_options, canceled_exit, model_command, note, run_settings, run_stoppable, say

if TYPE_CHECKING:
    from ..core.run.request import JobResult

NAME = "translate"


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = model_command(sub, NAME, "translate a raster with an lcgan ONNX model")
    parser.add_argument("--input", required=True, help="input raster (any GDAL format)")
    parser.add_argument("--output", required=True, help="output GeoTIFF")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: all cores)")
    add_run_options(parser, "translate at the raster's own pixel size even when it differs from the model's ground "
                            "sample distance by more than 10 %% (by default it is translated at the model's GSD and "
                            "resampled back, as in QGIS); also needed for rasters in degrees or without a CRS")
    parser.add_argument("--confidence", default=None, help="also write the max class probability here (land cover)")
    parser.add_argument("--vector", default=None,
                        help="also write the classes as polygons here (.gpkg, .geojson, .fgb)")
    parser.add_argument("--min-polygon-px", type=int, default=0,
                        help="merge patches smaller than this many pixels into their neighbour first (with --vector)")
    parser.add_argument("--no-overwrite", action="store_true", help="refuse to replace an existing output")


def run(args: argparse.Namespace) -> int:
    from ..core.rasters.gdal_io import GdalReader
    from ..core.run.job import TranslationRequest, run_translation
    from ..core.run.settings import ModelChoice

    request = TranslationRequest(
        output_path=args.output, model=ModelChoice(path=args.model), settings=run_settings(args),
        confidence_path=args.confidence, vector_path=args.vector, min_polygon_px=args.min_polygon_px,
        input_path=args.input, overwrite=not args.no_overwrite,
    )

    def translate(update: Callable[[float], None], is_canceled: Callable[[], bool]) -> JobResult:
        with GdalReader(args.input) as reader:
            return run_translation(request, reader, update, is_canceled, say, note=note).result

    result, stop_signal = run_stoppable(translate)
    if result.canceled:
        code, name = canceled_exit(stop_signal)
        print(f"cancelled: nothing was written ({name})", file=sys.stderr)
        return code
    print(f"{result.output_path}: {result.provider}, {result.backend} {result.precision}, {result.tiles} tiles, "
          f"{result.seconds:.1f} s, {result.mpx_per_s:.3f} Mpx/s")
    return 0
