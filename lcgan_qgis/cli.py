"""Command line: ``python -m lcgan_qgis translate|info|quantize|gates|weights ...`` (no QGIS needed).

Examples::

    python -m lcgan_qgis translate --model rgb_to_landcover.onnx --input scene.tif --output landcover.tif
    python -m lcgan_qgis translate --model landcover_to_rgb_terrain.onnx --input nlcd.tif --elevation dem.tif \
        --output rgb.tif
    python -m lcgan_qgis info rgb_to_landcover.onnx
    python -m lcgan_qgis quantize --model M.onnx --calibration scene.tif --output M.int8.onnx
    python -m lcgan_qgis gates --model M.onnx --calibration scene.tif
    python -m lcgan_qgis weights --model M.onnx --storage fp16 --calibration scene.tif

``translate`` runs the job QGIS runs (:func:`lcgan_qgis.core.job.run_translation`): the same output checks, and the
same resolution policy (a raster more than 10 % off the model's ground sample distance is translated at the model's
GSD, read through GDAL's resampling as QGIS reads it, and the result resampled back onto its own grid;
``--no-gsd-check`` switches it off).

Errors the user can fix (lcgan's own) end the program with exit code 2 and one line on stderr, no traceback;
Ctrl-C cancels the run cleanly (no output file, no temporary file) with exit code 130, SIGTERM and SIGHUP with
143 and 129. The job's log lines go to stdout, its notes (``note: ...``) and errors to stderr.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import signal
import sys
import unicodedata
from collections.abc import Callable, Sequence
from types import FrameType

from .core.choices import BACKENDS, DEVICES, PRECISIONS, WEIGHT_STORAGES
from .core.contract import RADIOMETRY_MODES
from .core.errors import LcganError, OptionError

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
    tr.add_argument("--overlap", type=int, default=None, help="overlap between windows in px (default: the model's)")
    tr.add_argument("--window", type=int, default=None, help="inference window in px (default: the engine's)")
    tr.add_argument("--device", choices=DEVICES, default="auto")
    tr.add_argument("--threads", type=int, default=None, help="CPU threads (default: all cores)")
    _add_path_options(tr)
    tr.add_argument("--batch", type=int, default=1, help="windows per inference batch")
    tr.add_argument("--bands", type=_bands, default=None, help="input bands for imagery, e.g. 4,3,2")
    tr.add_argument("--radiometry", choices=RADIOMETRY_MODES, default=None,
                    help="how imagery values are scaled (default: the model's)")
    tr.add_argument("--confidence", default=None, help="also write the max class probability here (land cover)")
    tr.add_argument("--aoi", default=None, help="area of interest: polygon WKT in the raster's CRS")
    tr.add_argument("--vector", default=None, help="also write the classes as polygons here (.gpkg, .geojson, .fgb)")
    tr.add_argument("--min-polygon-px", type=int, default=0,
                    help="merge patches smaller than this many pixels into their neighbour first (with --vector)")
    tr.add_argument("--no-gsd-check", action="store_true",
                    help="translate at the raster's own pixel size even when it differs from the model's ground "
                         "sample distance by more than 10 %% (by default it is translated at the model's GSD and "
                         "resampled back, as in QGIS); also needed for rasters in degrees or without a CRS")
    tr.add_argument("--no-overwrite", action="store_true", help="refuse to replace an existing output")
    tr.add_argument("--elevation", default=None, metavar="DEM",
                    help="elevation raster (any GDAL raster and CRS; resampled onto the land cover's grid) for "
                         "terrain-aware land cover -> RGB models; ignored, with a warning, by map-only models")
    tr.add_argument("--sun-azimuth", type=float, default=None, metavar="DEG",
                    help="sun azimuth for the hillshade, degrees clockwise from north (default: the model's)")
    tr.add_argument("--sun-elevation", type=float, default=None, metavar="DEG",
                    help="sun elevation above the horizon in degrees (default: the model's)")
    tr.add_argument("--elevation-unit-m", type=float, default=None, metavar="M",
                    help="metres per elevation unit, e.g. 0.3048 for feet (default: the unit the DEM states, "
                         "else the model's)")

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


def _translate(args: argparse.Namespace) -> int:
    from .core.gdal_io import GdalReader
    from .core.job import TranslationRequest, run_translation

    request = TranslationRequest(
        output_path=args.output, model_path=args.model, device=args.device, threads=args.threads,
        precision=args.precision, backend=args.backend, overlap_px=args.overlap, window_px=args.window,
        batch_size=args.batch, bands=args.bands, aoi_wkt=args.aoi, confidence_path=args.confidence,
        radiometry_mode=args.radiometry, check_gsd=not args.no_gsd_check, input_path=args.input,
        overwrite=not args.no_overwrite, elevation_path=args.elevation, sun_azimuth_deg=args.sun_azimuth,
        sun_elevation_deg=args.sun_elevation, elevation_unit_m=args.elevation_unit_m, vector_path=args.vector,
        min_polygon_px=args.min_polygon_px,
    )
    stop_signal: list[int] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop_signal.append(signum)

    previous = {signum: signal.signal(signum, on_signal) for signum in STOP_SIGNALS}
    update, close = _progress_bar()
    try:
        with GdalReader(args.input) as reader:
            job = run_translation(request, reader, update, lambda: bool(stop_signal),
                                  lambda line: print(printable(line), flush=True),
                                  note=lambda line: print(printable(f"note: {line}"), file=sys.stderr, flush=True))
    finally:
        close()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    result = job.result
    if result.canceled:
        signum = stop_signal[0] if stop_signal else signal.SIGINT
        print(f"cancelled: nothing was written ({signal.Signals(signum).name})", file=sys.stderr)
        return 128 + signum
    print(f"{result.output_path}: {result.provider}, {result.backend} {result.precision}, {result.tiles} tiles, "
          f"{result.seconds:.1f} s, {result.mpx_per_s:.3f} Mpx/s")
    return 0


def _info(args: argparse.Namespace) -> int:
    from .core.contract import Direction
    from .core.runtime import load_model

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
    from .core.precision import int8_sibling

    if int8_sibling(args.model).resolve() != report.path.resolve():
        print(f"note: {report.path.name} is not named {int8_sibling(args.model).name}, so auto will not use it and "
              "no fidelity record was measured", file=sys.stderr)
        return 0
    return _gates(args)


def _gates(args: argparse.Namespace) -> int:
    if args.windows < 1:
        raise OptionError(f"--windows must be >= 1, got {args.windows}.")
    from .core.precision import record_path
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


COMMANDS = {"translate": _translate, "info": _info, "quantize": _quantize, "gates": _gates, "weights": _weights}


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

