"""``translate-mosaic``: a raster of any size on a Dask cluster (:func:`lcgan_qgis.mosaic.job.run_mosaic`), with
the same run options as ``translate``."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys

from .common import add_run_options, canceled_exit, model_command, printable, run_settings, run_stoppable, say, tile_bar

NAME = "translate-mosaic"


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..mosaic.request import DEFAULT_RETRIES, DEFAULT_TILE_PX, DEFAULT_TIMEOUT_S

    parser = model_command(sub, NAME, "translate a raster of any size on a Dask cluster (local or existing) into "
                           "Cloud Optimized GeoTIFF tiles and a VRT; resumable (docs/mosaic.md)",
                           "lcgan .onnx model (a path every worker can read)")
    parser.add_argument("--input", required=True, nargs="+",
                        help="raster(s) or folder(s) of rasters: any GDAL path, a VRT, /vsicurl/..., /vsis3/...")
    parser.add_argument("--output-dir", required=True, help="folder for tiles/, manifest.jsonl and mosaic.vrt")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--scheduler", default=None, help="Dask scheduler address, e.g. tcp://10.0.0.5:8786")
    where.add_argument("--local-workers", type=int, default=None,
                       help="worker processes of a local cluster (default: cores / 4, at least 1)")
    parser.add_argument("--tile-px", type=int, default=DEFAULT_TILE_PX,
                        help=f"super-tile side in px (default {DEFAULT_TILE_PX})")
    parser.add_argument("--threads-per-worker", dest="threads", type=int, default=None,
                        help="onnxruntime threads per worker (default: local cores / workers; remote: the worker's)")
    add_run_options(parser, "run even when the pixel size is more than 10 %% off the model's GSD (by default such a "
                            "raster is refused: warp it to the model's GSD first, every worker reads one grid)")
    parser.add_argument("--retries", type=int, default=DEFAULT_RETRIES,
                        help=f"extra tries of a tile after an error (default {DEFAULT_RETRIES})")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S,
                        help=f"seconds to wait for the scheduler (default {DEFAULT_TIMEOUT_S:g})")


def run(args: argparse.Namespace) -> int:
    from ..core.run.settings import ModelChoice
    from ..mosaic.job import run_mosaic
    from ..mosaic.request import Cluster, MosaicRequest

    request = MosaicRequest(
        inputs=tuple(args.input), output_dir=args.output_dir, model=ModelChoice(path=args.model),
        settings=run_settings(args),
        cluster=Cluster(scheduler=args.scheduler, local_workers=args.local_workers, tile_px=args.tile_px,
                        retries=args.retries, timeout_s=args.timeout),
    )
    if not args.verbose:
        with contextlib.suppress(ImportError):  # (without Dask, run_mosaic says how to install it)
            import distributed  # noqa: F401 (importing it sets its loggers to INFO: every worker's arrival, departure)

            logging.getLogger("distributed").setLevel(logging.WARNING)
    result, stop_signal = run_stoppable(lambda update, is_canceled: run_mosaic(request, update, is_canceled, say),
                                        tile_bar)
    for message in result.messages:
        print(printable(f"note: {message}"), file=sys.stderr)
    retries = "unknown" if result.retries is None else str(result.retries)
    summary = (f"{result.tiles} tiles ({result.ran} run, {result.skipped} already done), {result.seconds:.1f} s, "
               f"{result.mpx_per_s:.3f} Mpx/s over the tiles run, {retries} retries, {result.workers} workers, "
               f"{result.backend} {result.precision}")
    if result.canceled:
        code, name = canceled_exit(stop_signal)
        print(f"cancelled ({name}): {summary}; run the same command again to resume", file=sys.stderr)
        return code
    print(f"{result.vrt_path}: {summary}")
    return 0
