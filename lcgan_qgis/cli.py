"""Command line: ``python -m lcgan_qgis translate|translate-mosaic|info|quantize|gates|weights ...`` (no QGIS needed).

Examples::

    python -m lcgan_qgis translate --model rgb_to_landcover.onnx --input scene.tif --output landcover.tif
    python -m lcgan_qgis translate --model landcover_to_rgb_terrain.onnx --input nlcd.tif --elevation dem.tif \
        --output rgb.tif
    python -m lcgan_qgis info rgb_to_landcover.onnx
    python -m lcgan_qgis quantize --model M.onnx --calibration scene.tif --output M.int8.onnx
    python -m lcgan_qgis gates --model M.onnx --calibration scene.tif
    python -m lcgan_qgis translate-mosaic --model M.onnx --input conus.tif --output-dir out/ --local-workers 4
    python -m lcgan_qgis weights --model M.onnx --storage fp16 --calibration scene.tif

``translate`` runs the job QGIS runs (:func:`lcgan_qgis.core.run.job.run_translation`): the same output checks, and the
same resolution policy (a raster more than 10 % off the model's ground sample distance is translated at the model's
GSD, read through GDAL's resampling as QGIS reads it, and the result resampled back onto its own grid;
``--no-gsd-check`` switches it off). ``translate-mosaic`` runs the same job's rules on a Dask cluster
(:func:`lcgan_qgis.mosaic.job.run_mosaic`), with the same run options (:func:`_add_run_options`).

Errors the user can fix (lcgan's own) end the program with exit code 2 and one line on stderr, no traceback;
Ctrl-C cancels the run cleanly (no output file, no temporary file; a mosaic keeps its finished tiles) with exit
code 130, SIGTERM and SIGHUP with 143 and 129. The job's log lines go to stdout, its notes (``note: ...``) and errors
to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import logging
import signal
import sys
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from types import FrameType
from typing import Any

from .core.choices import BACKENDS, DEVICES, PRECISIONS, WEIGHT_STORAGES
from .core.errors import LcganError, OptionError
from .core.model.contract import RADIOMETRY_MODES

EXIT_ERROR = 2
EXIT_CANCELED = 130  # 128 + SIGINT; a run stopped by SIGTERM or SIGHUP exits with 128 + that signal
#: Signals that cancel a run cleanly (no output, no temporary file) instead of killing the process.
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


class Stopped(BaseException):
    """Raised in the main thread by a stop signal outside a translation (quantize, info), so cleanup runs."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def printable(text: str) -> str:
    """``text`` with control characters (terminal escape sequences, carriage returns...) shown as ``\\x1b``-style
    escapes: model metadata is someone else's text and must not drive the user's terminal."""
    return "".join(ch if ch == "\n" or unicodedata.category(ch)[0] != "C" else ch.encode("unicode_escape").decode()
                   for ch in text)


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
    tr.add_argument("--threads", type=int, default=None, help="CPU threads (default: all cores)")
    _add_run_options(tr, "translate at the raster's own pixel size even when it differs from the model's ground "
                         "sample distance by more than 10 %% (by default it is translated at the model's GSD and "
                         "resampled back, as in QGIS); also needed for rasters in degrees or without a CRS")
    tr.add_argument("--confidence", default=None, help="also write the max class probability here (land cover)")
    tr.add_argument("--vector", default=None, help="also write the classes as polygons here (.gpkg, .geojson, .fgb)")
    tr.add_argument("--min-polygon-px", type=int, default=0,
                    help="merge patches smaller than this many pixels into their neighbour first (with --vector)")
    tr.add_argument("--no-overwrite", action="store_true", help="refuse to replace an existing output")

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
    _add_run_options(mo, "run even when the pixel size is more than 10 %% off the model's GSD (by default such a "
                         "raster is refused: warp it to the model's GSD first, every worker reads one grid)")
    mo.add_argument("--retries", type=int, default=2, help="extra tries of a tile after an error (default 2)")
    mo.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the scheduler (default 10)")

    info = sub.add_parser("info", help="print a model's contract and the execution provider it would use")
    info.add_argument("model")
    info.add_argument("--device", choices=DEVICES, default="auto")
    _add_path_options(info)

    qu = sub.add_parser("quantize", help="write an int8 (QDQ, per-channel) copy of a model, calibrated on a raster")
    qu.add_argument("--model", required=True)
    qu.add_argument("--calibration", required=True, help="a real raster of the model's input kind")
    qu.add_argument("--output", required=True)
    qu.add_argument("--windows", type=int, default=8, help="calibration windows (256 px)")
    qu.add_argument("--no-gates", action="store_true", help="do not measure the fidelity record afterwards")
    qu.add_argument("--elevation", default=None, metavar="DEM",
                    help="terrain-aware land cover -> RGB models: the DEM for the calibration raster")
    qu.add_argument("--weight-storage", choices=WEIGHT_STORAGES, default=None,
                    help="how the int8 copy stores its float layers' weights (default: as the model stores its own)")

    ga = sub.add_parser("gates", help="measure every backend x precision against fp32 on calibration windows and "
                                      "write the fidelity record M.fidelity.json that precision 'auto' reads")
    ga.add_argument("--model", required=True, help="the float model (its int8 sibling is measured too)")
    ga.add_argument("--calibration", required=True, help="a real raster of the model's input kind")
    ga.add_argument("--windows", type=int, default=8, help="calibration windows (256 px)")
    ga.add_argument("--elevation", default=None, metavar="DEM",
                    help="terrain-aware land cover -> RGB models: the DEM for the calibration raster")

    we = sub.add_parser("weights", help="store a model's weights as float16 (half the file; compute stays float32) "
                                        "or float32, in place; checked against the file as it was first")
    we.add_argument("--model", required=True, help="an lcgan .onnx model (float or int8)")
    we.add_argument("--storage", choices=WEIGHT_STORAGES, default="fp16",
                    help="fp16 (default): large weight tensors as float16 behind Casts to float32; fp32: back to "
                         "float32 initializers (with the float16 values)")
    we.add_argument("--calibration", default=None,
                    help="a real raster of the model's input kind: the conversion is measured on its calibration "
                         "windows and refused below the fidelity gate (without it: a random input, max |diff| only)")
    we.add_argument("--windows", type=int, default=8, help="calibration windows (256 px)")
    we.add_argument("--elevation", default=None, metavar="DEM",
                    help="terrain-aware land cover -> RGB models: the DEM for the calibration raster")
    return parser


def _add_path_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--precision", choices=PRECISIONS, default="auto",
                        help="auto: the fastest path that passes the model's fidelity record (M.fidelity.json), "
                             "else fp32; bf16 needs OpenVINO on a CPU with BF16; int8 runs M.int8.onnx")
    parser.add_argument("--backend", choices=BACKENDS, default="auto",
                        help="auto: OpenVINO on the CPU where installed and allowed, else onnxruntime")


def _add_run_options(parser: argparse.ArgumentParser, gsd_help: str) -> None:
    """The options ``translate`` and ``translate-mosaic`` share, named as :func:`_run_fields` reads them."""
    parser.add_argument("--overlap", type=int, default=None,
                        help="overlap between windows in px (default: the model's)")
    parser.add_argument("--window", type=int, default=None, help="inference window in px (default: the engine's)")
    parser.add_argument("--device", choices=DEVICES, default="auto")
    _add_path_options(parser)
    parser.add_argument("--batch", type=int, default=1, help="windows per inference batch")
    parser.add_argument("--bands", type=_bands, default=None, help="input bands for imagery, e.g. 4,3,2")
    parser.add_argument("--radiometry", choices=RADIOMETRY_MODES, default=None,
                        help="how imagery values are scaled (default: the model's)")
    parser.add_argument("--aoi", default=None, help="area of interest: polygon WKT in the raster's CRS")
    parser.add_argument("--no-gsd-check", action="store_true", help=gsd_help)
    parser.add_argument("--elevation", default=None, metavar="DEM",
                        help="elevation raster (any GDAL raster and CRS; resampled onto the land cover's grid) for "
                             "terrain-aware land cover -> RGB models; ignored, with a warning, by map-only models")
    parser.add_argument("--sun-azimuth", type=float, default=None, metavar="DEG",
                        help="sun azimuth for the hillshade, degrees clockwise from north (default: the model's)")
    parser.add_argument("--sun-elevation", type=float, default=None, metavar="DEG",
                        help="sun elevation above the horizon in degrees (default: the model's)")
    parser.add_argument("--elevation-unit-m", type=float, default=None, metavar="M",
                        help="metres per elevation unit, e.g. 0.3048 for feet (default: the unit the DEM states, "
                             "else the model's)")


def _run_fields(args: argparse.Namespace) -> dict[str, Any]:
    """The request fields of :func:`_add_run_options` (the same names in ``TranslationRequest`` and
    ``MosaicRequest``)."""
    return dict(model_path=args.model, device=args.device, precision=args.precision, backend=args.backend,
                overlap_px=args.overlap, window_px=args.window, batch_size=args.batch, bands=args.bands,
                radiometry_mode=args.radiometry, aoi_wkt=args.aoi, check_gsd=not args.no_gsd_check,
                elevation_path=args.elevation, sun_azimuth_deg=args.sun_azimuth,
                sun_elevation_deg=args.sun_elevation, elevation_unit_m=args.elevation_unit_m)


@contextlib.contextmanager
def _stop_signals() -> Iterator[list[int]]:
    """While it lasts, :data:`STOP_SIGNALS` are recorded in the yielded list (the run polls it) instead of stopping
    the process."""
    stop_signal: list[int] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop_signal.append(signum)

    previous = {signum: signal.signal(signum, on_signal) for signum in STOP_SIGNALS}
    try:
        yield stop_signal
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _progress_bar() -> tuple[Callable[[float], None], Callable[[], None]]:
    """A progress callable (fraction 0..1) and a closer: tqdm when installed, else a plain percentage line. The bar
    appears at the first progress report, so the job's messages before it are not torn."""
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

        return plain, lambda: sys.stderr.write("\n") if last[0] >= 0 else None
    bars: list[tqdm] = []

    def update(fraction: float) -> None:
        if not bars:
            bars.append(tqdm(total=1000, unit="‰", bar_format="{l_bar}{bar}| {elapsed}<{remaining}", file=sys.stderr))
        bars[0].update(int(fraction * 1000) - bars[0].n)

    return update, lambda: bars[0].close() if bars else None


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
    from .core.rasters.gdal_io import GdalReader
    from .core.run.job import TranslationRequest, run_translation

    request = TranslationRequest(
        output_path=args.output, threads=args.threads, confidence_path=args.confidence, input_path=args.input,
        overwrite=not args.no_overwrite, vector_path=args.vector, min_polygon_px=args.min_polygon_px,
        **_run_fields(args),
    )
    update, close = _progress_bar()
    with _stop_signals() as stop_signal:
        try:
            with GdalReader(args.input) as reader:
                job = run_translation(request, reader, update, lambda: bool(stop_signal),
                                      lambda line: print(printable(line), flush=True),
                                      note=lambda line: print(printable(f"note: {line}"), file=sys.stderr,
                                                              flush=True))
        finally:
            close()
    result = job.result
    if result.canceled:
        signum = stop_signal[0] if stop_signal else signal.SIGINT
        print(f"cancelled: nothing was written ({signal.Signals(signum).name})", file=sys.stderr)
        return 128 + signum
    print(f"{result.output_path}: {result.provider}, {result.backend} {result.precision}, {result.tiles} tiles, "
          f"{result.seconds:.1f} s, {result.mpx_per_s:.3f} Mpx/s")
    return 0


def _translate_mosaic(args: argparse.Namespace) -> int:
    from .mosaic.job import MosaicRequest, run_mosaic

    request = MosaicRequest(
        inputs=tuple(args.input), output_dir=args.output_dir, scheduler=args.scheduler,
        local_workers=args.local_workers, threads_per_worker=args.threads_per_worker, tile_px=args.tile_px,
        retries=args.retries, timeout_s=args.timeout, **_run_fields(args),
    )
    if not args.verbose:
        with contextlib.suppress(ImportError):  # (without Dask, run_mosaic says how to install it)
            import distributed  # noqa: F401 (importing it sets its loggers to INFO: every worker's arrival, departure)

            logging.getLogger("distributed").setLevel(logging.WARNING)
    update, close = _tile_bar()
    with _stop_signals() as stop_signal:
        try:
            result = run_mosaic(request, update, lambda: bool(stop_signal),
                                lambda line: print(printable(line), flush=True))
        finally:
            close()
    for message in result.messages:
        print(printable(f"note: {message}"), file=sys.stderr)
    retries = "unknown" if result.retries is None else str(result.retries)
    summary = (f"{result.tiles} tiles ({result.ran} run, {result.skipped} already done), {result.seconds:.1f} s, "
               f"{result.mpx_per_s:.3f} Mpx/s over the tiles run, {retries} retries, {result.workers} workers, "
               f"{result.backend} {result.precision}")
    if result.canceled:
        signum = stop_signal[0] if stop_signal else signal.SIGINT
        print(f"cancelled ({signal.Signals(signum).name}): {summary}; run the same command again to resume",
              file=sys.stderr)
        return 128 + signum
    print(f"{result.vrt_path}: {summary}")
    return 0


def _info(args: argparse.Namespace) -> int:
    from .core.model.contract import Direction
    from .core.model.runtime import load_model

    model = load_model(args.model, args.device, precision=args.precision, backend=args.backend)
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
    if c.direction is Direction.LANDCOVER_TO_RGB:
        parts = [f"{c.num_classes} classes"] + ([f"{c.terrain_channels} terrain"] if c.terrain else []) + (
            [f"{c.noise_channels} noise"] if c.noise_channels else [])
        lines.insert(-1, f"input:        {c.in_channels} channels ({' + '.join(parts)})")
        lines.insert(-1, "terrain:      " + (f"needs elevation (--elevation): {c.terrain.describe()}" if c.terrain
                                            else "none (map only; no elevation input)"))
    lines += [f"  {cls.code:>5}  {cls.hex}  {cls.name}" for cls in c.scheme.classes]
    lines.append(f"provider:     {model.provider_reason}")
    lines.append(f"runs with:    {model.summary}")
    if model.compile_seconds:
        lines.append(f"compile:      {model.compile_seconds:.2f} s (OpenVINO; its model cache makes the next one fast)")
    lines += [f"note:         {note}" for note in model.notes]
    if c.description:
        lines.append(f"description:  {c.description}")
    print("\n".join(printable(line.replace("\n", " ")) for line in lines))
    return 0


def _quantize(args: argparse.Namespace) -> int:
    if args.windows < 1:
        raise OptionError(f"--windows must be >= 1, got {args.windows}.")
    _need_onnx("quantize")
    from .tooling.quantize import quantize_model

    report = quantize_model(args.model, args.calibration, args.output, windows=args.windows,
                            elevation=args.elevation, storage=args.weight_storage)
    print(f"{report.path}: int8 model written ({report.path.stat().st_size / 1e6:.1f} MB); {report.summary}")
    if args.no_gates:
        return 0
    from .core.model.precision import int8_sibling

    if int8_sibling(args.model).resolve() != report.path.resolve():
        print(f"note: {report.path.name} is not named {int8_sibling(args.model).name}, so auto will not use it and "
              "no fidelity record was measured", file=sys.stderr)
        return 0
    return _gates(args)


def _gates(args: argparse.Namespace) -> int:
    if args.windows < 1:
        raise OptionError(f"--windows must be >= 1, got {args.windows}.")
    from .core.model.precision import record_path
    from .tooling.gates import measure_gates, summary

    record = measure_gates(args.model, args.calibration, windows=args.windows, elevation=args.elevation)
    print(f"{record_path(args.model)}: fidelity vs fp32 on {record.calibration}\n{summary(record)}")
    return 0


def _weights(args: argparse.Namespace) -> int:
    if args.windows < 1:
        raise OptionError(f"--windows must be >= 1, got {args.windows}.")
    _need_onnx("weights")
    from .tooling.weight_storage import convert_file

    report = convert_file(args.model, args.storage, calibration=args.calibration, elevation=args.elevation,
                          windows=args.windows)
    print(printable(report.summary))
    for record in report.stale_records:
        print(printable(f"note: {record} measured the previous file and no longer applies to it; re-measure it "
                        "with `python -m lcgan_qgis gates`"), file=sys.stderr)
    return 0


def _need_onnx(command: str) -> None:
    """Tooling, not the plugin's runtime: QGIS installs lack the onnx package."""
    if importlib.util.find_spec("onnx") is None:
        raise OptionError(f"{command} needs the onnx package, which the plugin's runtime does not ship; run it from "
                          "the lcgan repository's .venv (make setup), or pip install the onnx pinned in "
                          "requirements/dev.txt.")


COMMANDS = {"translate": _translate, "translate-mosaic": _translate_mosaic, "info": _info, "quantize": _quantize,
            "gates": _gates, "weights": _weights}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")

    def stop(signum: int, _frame: FrameType | None) -> None:
        raise Stopped(signum)

    previous = {signum: signal.signal(signum, stop) for signum in STOP_SIGNALS if signum != signal.SIGINT}
    try:
        return COMMANDS[args.command](args)
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

