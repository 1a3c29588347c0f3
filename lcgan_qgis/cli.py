"""Command line: ``python -m lcgan_qgis translate|info|quantize|gates ...`` (no QGIS needed).

Examples::

    python -m lcgan_qgis translate --model rgb_to_landcover.onnx --input scene.tif --output landcover.tif
    python -m lcgan_qgis info rgb_to_landcover.onnx
    python -m lcgan_qgis quantize --model M.onnx --calibration scene.tif --output M.int8.onnx
    python -m lcgan_qgis gates --model M.onnx --calibration scene.tif

Errors the user can fix (lcgan's own) end the program with exit code 2 and one line on stderr, no traceback;
Ctrl-C cancels the run cleanly (no output file) with exit code 130.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from types import FrameType

from .core.errors import LcganError, OptionError
from .core.precision import BACKENDS, PRECISIONS

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
    _add_path_options(tr)
    tr.add_argument("--batch", type=int, default=1, help="windows per inference batch")
    tr.add_argument("--bands", type=_bands, default=None, help="input bands for imagery, e.g. 4,3,2")
    tr.add_argument("--radiometry", choices=("fixed", "percentile"), default=None,
                    help="how imagery values are scaled (default: the model's)")
    tr.add_argument("--confidence", default=None, help="also write the max class probability here (land cover)")
    tr.add_argument("--aoi", default=None, help="area of interest: polygon WKT in the raster's CRS")
    tr.add_argument("--no-overwrite", action="store_true", help="refuse to replace an existing output")

    info = sub.add_parser("info", help="print a model's contract and the execution provider it would use")
    info.add_argument("model")
    info.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    _add_path_options(info)

    qu = sub.add_parser("quantize", help="write an int8 (QDQ, per-channel) copy of a model, calibrated on a raster")
    qu.add_argument("--model", required=True)
    qu.add_argument("--calibration", required=True, help="a real raster of the model's input kind")
    qu.add_argument("--output", required=True)
    qu.add_argument("--windows", type=int, default=8, help="calibration windows (256 px)")
    qu.add_argument("--no-gates", action="store_true", help="do not measure the fidelity record afterwards")

    ga = sub.add_parser("gates", help="measure every backend x precision against fp32 on calibration windows and "
                                      "write the fidelity record M.fidelity.json that precision 'auto' reads")
    ga.add_argument("--model", required=True, help="the float model (its int8 sibling is measured too)")
    ga.add_argument("--calibration", required=True, help="a real raster of the model's input kind")
    ga.add_argument("--windows", type=int, default=8, help="calibration windows (256 px)")
    return parser


def _add_path_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--precision", choices=PRECISIONS, default="auto",
                        help="auto: the fastest path that passes the model's fidelity record (M.fidelity.json), "
                             "else fp32; bf16 needs OpenVINO on a CPU with BF16; int8 runs M.int8.onnx")
    parser.add_argument("--backend", choices=BACKENDS, default="auto",
                        help="auto: OpenVINO on the CPU where installed and allowed, else onnxruntime")


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


def _translate(args: argparse.Namespace) -> int:
    from .core.engine import TranslateOptions, translate
    from .core.gdal_io import GdalReader
    from .core.runtime import load_model

    canceled = [False]

    def on_sigint(_signum: int, _frame: FrameType | None) -> None:
        canceled[0] = True

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        model = load_model(args.model, args.device, args.threads, args.precision, args.backend)
        print(f"model: {model.path.name} ({model.contract.direction.value}); {model.summary}", flush=True)
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
    print(f"{result.output_path}: {result.provider}, {result.backend} {result.precision}, {result.tiles} tiles, "
          f"{result.seconds:.1f} s, {result.mpx_per_s:.3f} Mpx/s")
    return 0


def _info(args: argparse.Namespace) -> int:
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
    lines += [f"  {cls.code:>5}  {cls.hex}  {cls.name}" for cls in c.scheme.classes]
    lines.append(f"provider:     {model.provider_reason}")
    lines.append(f"runs with:    {model.summary}")
    if model.compile_seconds:
        lines.append(f"compile:      {model.compile_seconds:.2f} s (OpenVINO; its model cache makes the next one fast)")
    lines += [f"note:         {note}" for note in model.notes]
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

    record = measure_gates(args.model, args.calibration, windows=args.windows)
    print(f"{record_path(args.model)}: fidelity vs fp32 on {record.calibration}\n{summary(record)}")
    return 0


COMMANDS = {"translate": _translate, "info": _info, "quantize": _quantize, "gates": _gates}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    try:
        return COMMANDS[args.command](args)
    except LcganError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR

