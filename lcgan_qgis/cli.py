"""Command line: ``python -m lcgan_qgis translate|info|quantize ...`` (no QGIS needed).

Examples::

    python -m lcgan_qgis translate --model rgb_to_landcover.onnx --input scene.tif --output landcover.tif
    python -m lcgan_qgis info rgb_to_landcover.onnx
    python -m lcgan_qgis quantize --model M.onnx --calibration scene.tif --output M.int8.onnx
    python -m lcgan_qgis translate-mosaic --model M.onnx --input conus.tif --output-dir out/ --local-workers 4

Errors the user can fix (lcgan's own) end the program with exit code 2 and one line on stderr, no traceback;
Ctrl-C cancels the run cleanly (no output file) with exit code 130.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from types import FrameType

from .core.errors import LcganError, OptionError

EXIT_ERROR = 2
EXIT_CANCELED = 130


def _bands(text: str) -> tuple[int, ...]:
    try:
        bands = tuple(int(b) for b in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"bands must be comma-separated integers like 1,2,3, got {text!r}") from None
    return bands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lcgan_qgis", description=__doc__.split("\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log details (window grid, provider choice)")
    sub = parser.add_subparsers(dest="command", required=True)

    tr = sub.add_parser("translate", help="translate a raster with an lcgan ONNX model")
    tr.add_argument("--model", required=True, help="lcgan .onnx model")
    tr.add_argument("--input", required=True, help="input raster (any GDAL format)")
    tr.add_argument("--output", required=True, help="output GeoTIFF")
    tr.add_argument("--overlap", type=int, default=None, help="overlap between windows in px (default: the model's)")
    tr.add_argument("--window", type=int, default=None, help="inference window in px (default: the engine's)")
    tr.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    tr.add_argument("--threads", type=int, default=None, help="CPU threads (default: all cores)")
    tr.add_argument("--precision", choices=("auto", "fp32", "int8"), default="auto",
                    help="auto: the model's int8 copy (M.int8.onnx) on CPU when it exists")
    tr.add_argument("--batch", type=int, default=1, help="windows per inference batch")
    tr.add_argument("--bands", type=_bands, default=None, help="input bands for imagery, e.g. 4,3,2")
    tr.add_argument("--radiometry", choices=("fixed", "percentile"), default=None,
                    help="how imagery values are scaled (default: the model's)")
    tr.add_argument("--confidence", default=None, help="also write the max class probability here (land cover)")
    tr.add_argument("--aoi", default=None, help="area of interest: polygon WKT in the raster's CRS")
    tr.add_argument("--no-overwrite", action="store_true", help="refuse to replace an existing output")

    _add_mosaic_parser(sub)

    info = sub.add_parser("info", help="print a model's contract and the execution provider it would use")
    info.add_argument("model")
    info.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")

    qu = sub.add_parser("quantize", help="write an int8 (QDQ, per-channel) copy of a model, calibrated on a raster")
    qu.add_argument("--model", required=True)
    qu.add_argument("--calibration", required=True, help="a real raster of the model's input kind")
    qu.add_argument("--output", required=True)
    qu.add_argument("--windows", type=int, default=8, help="calibration windows (256 px)")
    return parser


def _add_mosaic_parser(sub: argparse._SubParsersAction) -> None:
    mo = sub.add_parser("translate-mosaic", help="translate a raster of any size on a Dask cluster (local or "
                        "existing) into Cloud Optimized GeoTIFF tiles and a VRT; resumable (docs/mosaic.md)")
    mo.add_argument("--model", required=True, help="lcgan .onnx model (a path every worker can read)")
    mo.add_argument("--input", required=True, nargs="+",
                    help="raster(s) or folder(s) of rasters: any GDAL path, a VRT, /vsicurl/..., /vsis3/...")
    mo.add_argument("--output-dir", required=True, help="folder for tiles/, manifest.jsonl and mosaic.vrt")
    where = mo.add_mutually_exclusive_group()
    where.add_argument("--scheduler", default=None, help="Dask scheduler address, e.g. tcp://10.0.0.5:8786")
    where.add_argument("--local-workers", type=int, default=None,
                       help="worker processes of a local cluster (default: cores / 4, at least 1)")
    mo.add_argument("--tile-px", type=int, default=4096, help="super-tile side in px (default 4096)")
    mo.add_argument("--threads-per-worker", type=int, default=None,
                    help="onnxruntime threads per worker (default: local cores / workers; remote: the worker's)")
    mo.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    mo.add_argument("--precision", choices=("auto", "fp32", "int8"), default="auto")
    mo.add_argument("--overlap", type=int, default=None, help="overlap between windows in px (default: the model's)")
    mo.add_argument("--window", type=int, default=None, help="inference window in px (default: the engine's)")
    mo.add_argument("--batch", type=int, default=1, help="windows per inference batch")
    mo.add_argument("--bands", type=_bands, default=None, help="input bands for imagery, e.g. 4,3,2")
    mo.add_argument("--radiometry", choices=("fixed", "percentile"), default=None)
    mo.add_argument("--aoi", default=None, help="area of interest: polygon WKT in the raster's CRS")
    mo.add_argument("--retries", type=int, default=2, help="extra tries of a tile after an error (default 2)")
    mo.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the scheduler (default 10)")
    mo.add_argument("--no-gsd-check", action="store_true",
                    help="run even when the pixel size is more than 10 %% off the model's GSD")


def _progress_bar() -> tuple[Callable[[float], None], Callable[[], None]]:
    """A progress callable (fraction 0..1) and a closer: tqdm when installed, else a plain percentage line."""
    try:
        from tqdm import tqdm
    except ImportError:
        last = [-1]

        def plain(fraction: float) -> None:
            percent = int(fraction * 100)
            if percent != last[0]:
                last[0] = percent
                sys.stderr.write(f"\r{percent:3d} %")
                sys.stderr.flush()

        return plain, lambda: sys.stderr.write("\n")
    bar = tqdm(total=1000, unit="‰", bar_format="{l_bar}{bar}| {elapsed}<{remaining}", file=sys.stderr)

    def update(fraction: float) -> None:
        bar.update(int(fraction * 1000) - bar.n)

    return update, bar.close


def _tile_bar() -> tuple[Callable[[int, int], None], Callable[[], None]]:
    """A progress callable (tiles done, tiles to run) and a closer; the bar appears with the first finished tile."""
    try:
        from tqdm import tqdm
    except ImportError:
        def plain(done: int, total: int) -> None:
            sys.stderr.write(f"\r{done}/{total} tiles")
            sys.stderr.flush()

        return plain, lambda: sys.stderr.write("\n")
    bars: list[tqdm] = []

    def update(done: int, total: int) -> None:
        if not bars:
            bars.append(tqdm(total=total, unit="tile", file=sys.stderr))
        bars[0].update(done - bars[0].n)

    return update, lambda: bars[0].close() if bars else None


def _translate(args: argparse.Namespace) -> int:
    from .core.engine import TranslateOptions, translate
    from .core.gdal_io import GdalReader
    from .core.runtime import load_model

    canceled = [False]

    def on_sigint(_signum: int, _frame: FrameType | None) -> None:
        canceled[0] = True

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        model = load_model(args.model, args.device, args.threads, args.precision)
        print(f"model: {model.path.name} ({model.contract.direction.value}, {model.precision}); "
              f"{model.provider_reason}", flush=True)
        options = TranslateOptions(overlap_px=args.overlap, batch_size=args.batch, bands=args.bands,
                                   radiometry_mode=args.radiometry, aoi_wkt=args.aoi,
                                   confidence_path=args.confidence, window_px=args.window,
                                   overwrite=not args.no_overwrite)
        update, close = _progress_bar()
        try:
            with GdalReader(args.input) as reader:
                result = translate(model, reader, args.output, options, update, lambda: canceled[0])
        finally:
            close()
    finally:
        signal.signal(signal.SIGINT, previous)
    for message in result.messages:
        print(f"note: {message}", file=sys.stderr)
    if result.canceled:
        print("cancelled: nothing was written", file=sys.stderr)
        return EXIT_CANCELED
    print(f"{result.output_path}: {result.provider}, {result.tiles} tiles, {result.seconds:.1f} s, "
          f"{result.mpx_per_s:.3f} Mpx/s")
    return 0


def _translate_mosaic(args: argparse.Namespace) -> int:
    from .mosaic.job import MosaicRequest, run_mosaic

    request = MosaicRequest(
        model_path=args.model, inputs=tuple(args.input), output_dir=args.output_dir, scheduler=args.scheduler,
        local_workers=args.local_workers, threads_per_worker=args.threads_per_worker, tile_px=args.tile_px,
        device=args.device, precision=args.precision, overlap_px=args.overlap, window_px=args.window,
        batch_size=args.batch, bands=args.bands, radiometry_mode=args.radiometry, aoi_wkt=args.aoi,
        check_gsd=not args.no_gsd_check, retries=args.retries, timeout_s=args.timeout,
    )
    if not args.verbose:
        with contextlib.suppress(ImportError):  # (without Dask, run_mosaic says how to install it)
            import distributed  # noqa: F401 (importing it sets its loggers to INFO: every worker's arrival, departure)

            logging.getLogger("distributed").setLevel(logging.WARNING)
    canceled = [False]

    def on_sigint(_signum: int, _frame: FrameType | None) -> None:
        canceled[0] = True

    update, close = _tile_bar()
    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        result = run_mosaic(request, update, lambda: canceled[0], lambda line: print(line, flush=True))
    finally:
        close()
        signal.signal(signal.SIGINT, previous)
    for message in result.messages:
        print(f"note: {message}", file=sys.stderr)
    retries = "unknown" if result.retries is None else str(result.retries)
    summary = (f"{result.tiles} tiles ({result.ran} run, {result.skipped} already done), {result.seconds:.1f} s, "
               f"{result.mpx_per_s:.3f} Mpx/s over the tiles run, {retries} retries, {result.workers} workers")
    if result.canceled:
        print(f"cancelled: {summary}; run the same command again to resume", file=sys.stderr)
        return EXIT_CANCELED
    print(f"{result.vrt_path}: {summary}")
    return 0


def _info(args: argparse.Namespace) -> int:
    from .core.runtime import load_model

    model = load_model(args.model, args.device, precision="fp32")
    c = model.contract
    radio = c.radiometry
    lines = [
        f"model:        {model.path}",
        f"direction:    {c.direction.value}",
        f"version:      {c.model_version} (contract {c.contract_version}, config {c.config_digest or '-'})",
        f"precision:    {c.extra.get('precision', 'fp32')}",
        f"tile:         {c.tile_size_px} px, recommended overlap {c.overlap_px} px, multiple of {c.size_multiple_px}",
        f"gsd:          {c.gsd_m:g} m",
        f"image bands:  {c.image_bands} ({', '.join(c.band_names)})",
        f"radiometry:   {radio.mode}, percentiles {radio.percentiles[0]:g}-{radio.percentiles[1]:g}, "
        f"low {list(radio.low)}, high {list(radio.high)}",
        f"scheme:       {c.scheme.name} ({len(c.scheme)} classes, nodata code {c.scheme.nodata_code})",
    ]
    lines += [f"  {cls.code:>5}  {cls.hex}  {cls.name}" for cls in c.scheme.classes]
    lines.append(f"provider:     {model.provider_reason}")
    if c.description:
        lines.append(f"description:  {c.description}")
    print("\n".join(lines))
    return 0


def _quantize(args: argparse.Namespace) -> int:
    if args.windows < 1:
        raise OptionError(f"--windows must be >= 1, got {args.windows}.")
    if importlib.util.find_spec("onnx") is None:  # tooling, not the plugin's runtime: QGIS installs lack it
        raise OptionError("quantize needs the onnx package, which the plugin's runtime does not ship; run it from "
                          "the lcgan repository's .venv (make setup), or pip install the onnx pinned in "
                          "requirements/dev.txt.")
    from .tooling.quantize import quantize_model

    report = quantize_model(args.model, args.calibration, args.output, windows=args.windows)
    print(f"{report.path}: int8 model written ({report.path.stat().st_size / 1e6:.1f} MB); {report.summary}")
    return 0


COMMANDS = {"translate": _translate, "translate-mosaic": _translate_mosaic, "info": _info, "quantize": _quantize}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    try:
        return COMMANDS[args.command](args)
    except LcganError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR

