"""What the commands share: the run options of ``translate``, ``translate-mosaic`` and ``scenario`` and the records
they build, progress bars, stop signals and safe printing."""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import signal
import sys
import unicodedata
from collections.abc import Callable, Iterator
from types import FrameType
from typing import TYPE_CHECKING, TypeVar

from ..core.choices import BACKENDS, DEVICES, PRECISIONS
from ..core.errors import OptionError
from ..core.model.contract import RADIOMETRY_MODES

if TYPE_CHECKING:
    from ..core.run.settings import RunSettings

#: Signals that cancel a run cleanly (no output, no temporary file) instead of killing the process.
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))
#: Calibration windows of quantize, gates and weights (256 px each).
DEFAULT_CALIBRATION_WINDOWS = 8


def printable(text: str) -> str:
    """``text`` with control characters (terminal escape sequences, carriage returns...) shown as ``\\x1b``-style
    escapes: model metadata is someone else's text and must not drive the user's terminal."""
    return "".join(ch if ch == "\n" or unicodedata.category(ch)[0] != "C" else ch.encode("unicode_escape").decode()
                   for ch in text)


def say(line: str) -> None:
    """A log line of the job on stdout."""
    print(printable(line), flush=True)


def note(line: str) -> None:
    """A note of the job (``note: ...``) on stderr."""
    print(printable(f"note: {line}"), file=sys.stderr, flush=True)


def _bands(text: str) -> tuple[int, ...]:
    try:
        bands = tuple(int(b) for b in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"bands must be comma-separated integers like 1,2,3, got {text!r}") from None
    return bands


def model_command(sub: argparse._SubParsersAction, name: str, help_text: str,
                  model_help: str = "lcgan .onnx model") -> argparse.ArgumentParser:
    """The parser of a command that works on one model file (``--model``, required)."""
    parser = sub.add_parser(name, help=help_text)
    parser.add_argument("--model", required=True, help=model_help)
    return parser


def add_path_options(parser: argparse.ArgumentParser) -> None:
    """``--precision`` and ``--backend``: the execution path."""
    parser.add_argument("--precision", choices=PRECISIONS, default="auto",
                        help="auto: the fastest path that passes the model's fidelity record (M.fidelity.json), "
                             "else fp32; bf16 needs OpenVINO on a CPU with BF16; int8 runs M.int8.onnx")
    parser.add_argument("--backend", choices=BACKENDS, default="auto",
                        help="auto: OpenVINO on the CPU where installed and allowed, else onnxruntime")


def add_calibration_options(parser: argparse.ArgumentParser) -> None:
    """``--windows`` and ``--elevation`` of the commands that measure a model on a calibration raster."""
    parser.add_argument("--windows", type=int, default=DEFAULT_CALIBRATION_WINDOWS,
                        help="calibration windows (256 px)")
    parser.add_argument("--elevation", default=None, metavar="DEM",
                        help="terrain-aware land cover -> RGB models: the DEM for the calibration raster")


def check_windows(args: argparse.Namespace) -> None:
    if args.windows < 1:
        raise OptionError(f"--windows must be >= 1, got {args.windows}.")


def add_run_options(parser: argparse.ArgumentParser, gsd_help: str) -> None:
    """The options ``translate`` and ``translate-mosaic`` share, read by :func:`run_settings` (the command adds
    ``--threads``, whose meaning differs)."""
    add_window_options(parser)
    parser.add_argument("--bands", type=_bands, default=None, help="input bands for imagery, e.g. 4,3,2")
    parser.add_argument("--radiometry", choices=RADIOMETRY_MODES, default=None,
                        help="how imagery values are scaled (default: the model's)")
    parser.add_argument("--aoi", default=None, help="area of interest: polygon WKT in the raster's CRS")
    parser.add_argument("--no-gsd-check", action="store_true", help=gsd_help)
    add_rendering_options(parser)


def add_window_options(parser: argparse.ArgumentParser) -> None:
    """How the model runs: ``--overlap``, ``--window``, ``--device``, the execution path and ``--batch``."""
    parser.add_argument("--overlap", type=int, default=None,
                        help="overlap between windows in px (default: the model's)")
    parser.add_argument("--window", type=int, default=None, help="inference window in px (default: the engine's)")
    parser.add_argument("--device", choices=DEVICES, default="auto")
    add_path_options(parser)
    parser.add_argument("--batch", type=int, default=1, help="windows per inference batch")


def add_rendering_options(parser: argparse.ArgumentParser) -> None:
    """What a land cover -> RGB model renders with: the DEM and sun of a terrain-aware model, and the seed."""
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
    parser.add_argument("--seed", type=int, default=0, metavar="N",
                        help="texture seed of synthetic imagery (models with noise channels): another seed paints "
                             "other texture over the same layout, the same seed the same pixels however the raster "
                             "is tiled (default 0, the model's own texture)")


def run_settings(args: argparse.Namespace) -> RunSettings:
    """The run's settings from the options of :func:`add_run_options` (and the command's ``--threads``).

    Raises:
        OptionError, DeviceError: a value a record refuses (named).
    """
    from ..core.run.settings import (
        Execution,
        ImageInput,
        Rendering,
        Resolution,
        RunSettings,
        Terrain,
        Windowing,
    )

    return RunSettings(
        execution=Execution(device=args.device, threads=args.threads, precision=args.precision, backend=args.backend),
        windowing=Windowing(window_px=args.window, overlap_px=args.overlap, batch_size=args.batch),
        image=ImageInput(bands=args.bands, radiometry_mode=args.radiometry),
        terrain=Terrain(elevation_path=args.elevation, sun_azimuth_deg=args.sun_azimuth,
                        sun_elevation_deg=args.sun_elevation, elevation_unit_m=args.elevation_unit_m),
        resolution=Resolution(check_gsd=not args.no_gsd_check),
        rendering=Rendering(seed=args.seed),
        aoi_wkt=args.aoi,
    )


@contextlib.contextmanager
def stop_signals() -> Iterator[list[int]]:
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


def canceled_exit(stop_signal: list[int]) -> tuple[int, str]:
    """The exit code of a run stopped by a signal (128 + its number) and the signal's name."""
    signum = stop_signal[0] if stop_signal else signal.SIGINT
    return 128 + signum, signal.Signals(signum).name


def progress_bar() -> tuple[Callable[[float], None], Callable[[], None]]:
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


def tile_bar() -> tuple[Callable[[int, int], None], Callable[[], None]]:
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


Result = TypeVar("Result")


def run_stoppable(job: Callable[[Callable, Callable[[], bool]], Result],
                  bar: Callable[[], tuple[Callable, Callable[[], None]]] = progress_bar) -> tuple[Result, list[int]]:
    """``job(progress, is_canceled)`` under a progress bar (:func:`progress_bar` or :func:`tile_bar`), with the stop
    signals recorded (a cancel, not the end of the process): its result, and the signals that stopped it (empty when
    none did; :func:`canceled_exit` turns them into the exit code)."""
    update, close = bar()
    with stop_signals() as stop_signal:
        try:
            return job(update, lambda: bool(stop_signal)), stop_signal
        finally:
            close()


def need_onnx(command: str) -> None:
    """Tooling, not the plugin's runtime: QGIS installs lack the onnx package."""
    if importlib.util.find_spec("onnx") is None:
        raise OptionError(f"{command} needs the onnx package, which the plugin's runtime does not ship; run it from "
                          "the lcgan repository's .venv (make setup), or pip install the onnx pinned in "
                          "requirements/dev.txt.")
