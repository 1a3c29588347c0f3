"""One translation job as the plugin runs it: resolve the model, check the resolution, call the core engine.

Both the Processing algorithms and the dock's background task run :func:`run_translation`, so they behave the
same. Everything here runs on a worker thread: it touches no QGIS layer or project, only the reader (which owns a
cloned data provider) and files. Tiles, blending, streaming and the GeoTIFF writer belong to
:func:`lcgan_qgis.core.engine.translate`.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from .contract import Direction
from .errors import Canceled, ContractError, InputRasterError, ModelFileError, OutputError
from .raster import RasterInfo, RasterReader
from .resampling import GSD_TOLERANCE, Grid, plan_resolution, warp_to_grid
from .resources import bundled_model_path

if TYPE_CHECKING:
    from .contract import ModelContract
    from .engine import TranslateOptions, TranslateResult
    from .runtime import Model

LOG = logging.getLogger(__name__)

#: Share of the progress bar given to the engine when the result is resampled back afterwards.
TRANSLATE_SHARE = 0.9

Progress = Callable[[float], None]
IsCanceled = Callable[[], bool]
Log = Callable[[str], None]


class GridReader(RasterReader, Protocol):
    """A reader that can also present its raster on another grid (:class:`lcgan_qgis.qgis_reader.ProviderReader`)."""

    info: RasterInfo

    @property
    def metres_per_unit(self) -> float | None: ...

    def on_grid(self, grid: Grid, categorical: bool) -> GridReader: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class TranslationRequest:
    """What to translate and how; built by the Processing algorithm or the dock widget (main thread).

    Attributes:
        direction: which translation the user asked for (the model must match).
        output_path: the GeoTIFF to write.
        model_path: the ``.onnx`` model; ``None`` for the bundled model of ``direction``.
        device: ``auto``, ``cpu`` or ``cuda``.
        overlap_px: tile overlap in pixels; ``None`` for the model's recommendation.
        batch_size: tiles per inference batch.
        bands: 1-based input bands in red, green, blue order (RGB input only; ``None``: 1, 2, 3).
        aoi_wkt: polygon in the layer's CRS; only tiles touching it run.
        confidence_path: land-cover output only: also write the max-probability GeoTIFF here.
        radiometry_mode: RGB input only: ``None`` for the model's own mode, ``"percentile"`` (this raster's own
            percentiles; right for 8-bit, other sensors and lcgan's synthetic imagery) or ``"fixed"`` (the training
            imagery's values, e.g. Landsat digital numbers).
        check_gsd: compare the layer's pixel size with the model's and resample when they differ.
        gsd_tolerance: relative pixel-size difference accepted without resampling.
        input_path: the layer's file, when it has one (an output may not overwrite it).
        precision: ``auto``, ``fp32``, ``bf16`` or ``int8`` (:mod:`lcgan_qgis.core.precision`).
        backend: ``auto``, ``onnxruntime`` or ``openvino``.
        cache_dir: OpenVINO's compiled-model cache (the plugin's settings folder; None: the user cache folder).
    """

    direction: Direction
    output_path: str
    model_path: str | None = None
    device: str = "auto"
    overlap_px: int | None = None
    batch_size: int = 1
    bands: tuple[int, ...] | None = None
    aoi_wkt: str | None = None
    confidence_path: str | None = None
    radiometry_mode: str | None = None
    check_gsd: bool = True
    gsd_tolerance: float = GSD_TOLERANCE
    input_path: str | None = None
    precision: str = "auto"
    backend: str = "auto"
    cache_dir: str | None = None


@dataclass(frozen=True)
class JobResult:
    """The engine's result plus the contract of the model that produced it (styling needs its scheme)."""

    result: TranslateResult
    contract: ModelContract

    @property
    def canceled(self) -> bool:
        return self.result.canceled


def resolve_model_path(model_path: str | None, direction: Direction) -> Path:
    """The model file to use: ``model_path`` when given, else the bundled model for ``direction``.

    Raises:
        ModelFileError: no model given and no bundled model installed (says where it was looked for).
    """
    if model_path:
        return Path(model_path)
    bundled = bundled_model_path(direction)
    if not bundled.is_file():
        raise ModelFileError(
            f"No model file was given and the bundled {direction.value} model is not installed (looked for "
            f"{bundled}). Choose a model file (.onnx) exported by lcgan."
        )
    return bundled


def describe_radiometry(requested: str | None, contract: ModelContract) -> str:
    """One line for the log: which radiometry a run uses, whether it was chosen, and what it means."""
    radio = contract.radiometry
    mode = requested or radio.mode
    origin = "the model's default" if requested is None else "chosen"
    if mode == "percentile":
        meaning = f"this raster's own {radio.percentiles[0]:g}-{radio.percentiles[1]:g} % range is the model's range"
    elif mode == "fixed":
        span = ", ".join(f"{lo:g}-{hi:g}" for lo, hi in zip(radio.low, radio.high, strict=True))
        meaning = f"pixel values are read in the training imagery's units, {span} per band"
    else:
        meaning = "unknown mode"
    return f"Radiometry: {mode} ({origin}; {meaning})."


def check_paths(request: TranslationRequest) -> None:
    """Refuse outputs that would overwrite the input or each other, before any work is done.

    Raises:
        OutputError: naming the path at fault.
    """
    if not request.output_path:
        raise OutputError("No output file was given.")
    outputs = [Path(p) for p in (request.output_path, request.confidence_path) if p]
    if request.input_path:
        source = Path(request.input_path).resolve()
        for out in outputs:
            if out.resolve() == source:
                raise OutputError(f"The output {out} is the input raster itself; choose another file name.")
    if len(outputs) == 2 and outputs[0].resolve() == outputs[1].resolve():
        raise OutputError(f"The land-cover output and the confidence output are the same file ({outputs[0]}).")
    for out in outputs:
        if out.suffix.lower() not in (".tif", ".tiff"):
            raise OutputError(f"Output {out} must be a GeoTIFF (.tif or .tiff).")


_busy_outputs: set[Path] = set()
_busy_lock = threading.Lock()


@contextlib.contextmanager
def claim_outputs(paths: list[str | None]) -> Iterator[None]:
    """Reserve output files for one run of this process; a second run on any of them is refused while it lasts.

    Two runs writing the same file would each finish with an atomic rename, and the later one would silently
    replace the earlier result, so the second is refused instead (runs in other processes are not seen: there, the
    file is whole but the later run's).

    Raises:
        OutputError: another run in this process is writing one of ``paths``.
    """
    claimed = [Path(p).resolve() for p in paths if p]
    with _busy_lock:
        busy = [p for p in claimed if p in _busy_outputs]
        if busy:
            raise OutputError(
                f"Another lcgan run in this QGIS session is writing {busy[0]} right now; wait for it to finish or "
                "choose another output file."
            )
        _busy_outputs.update(claimed)
    try:
        yield
    finally:
        with _busy_lock:
            _busy_outputs.difference_update(claimed)


def run_translation(request: TranslationRequest, reader: GridReader, progress: Progress | None = None,
                    is_canceled: IsCanceled | None = None, log: Log | None = None) -> JobResult:
    """Translate ``reader``'s raster as ``request`` says; returns the engine's result and the model's contract.

    Args:
        request: the parameters.
        reader: the input raster (a :class:`~lcgan_qgis.qgis_reader.ProviderReader`).
        progress: called with the fraction done (0..1).
        is_canceled: polled between tile batches; when it turns true the run stops and writes nothing.
        log: receives one-line messages for the user (model, provider, resolution decisions).

    Raises:
        LcganError: the core's specific error (model file, contract, input raster, output, device).
    """
    check_paths(request)
    with claim_outputs([request.output_path, request.confidence_path]):
        return _run_claimed(request, reader, progress, is_canceled, log)


def _run_claimed(request: TranslationRequest, reader: GridReader, progress: Progress | None,
                 is_canceled: IsCanceled | None, log: Log | None) -> JobResult:
    """:func:`run_translation` once the outputs are reserved."""
    from .engine import TranslateOptions, translate  # onnxruntime is imported only when a job runs
    from .runtime import load_model

    say = log or LOG.info
    report = progress or (lambda _f: None)
    model_path = resolve_model_path(request.model_path, request.direction)
    model = load_model(model_path, device=request.device, precision=request.precision, backend=request.backend,
                       cache_dir=request.cache_dir)
    try:
        contract = model.contract
        if contract.direction is not request.direction:
            raise ContractError(
                f"Model {model_path} translates {contract.direction.value}, not {request.direction.value}; "
                f"choose a {request.direction.value} model."
            )
        say(f"Model {model_path.name} (version {contract.model_version}, {contract.tile_size_px} px tiles, "
            f"{contract.gsd_m:g} m): {model.summary}.")
        if request.direction is Direction.RGB_TO_LANDCOVER:
            say(describe_radiometry(request.radiometry_mode, contract))
        plan = plan_resolution(reader.info, reader.metres_per_unit, contract.gsd_m, request.gsd_tolerance,
                               request.check_gsd)
        say(plan.message)
        options = TranslateOptions(
            overlap_px=request.overlap_px,
            batch_size=request.batch_size,
            bands=request.bands if request.direction is Direction.RGB_TO_LANDCOVER else None,
            radiometry_mode=request.radiometry_mode if request.direction is Direction.RGB_TO_LANDCOVER else None,
            aoi_wkt=request.aoi_wkt,
            confidence_path=request.confidence_path,
        )
        if plan.grid is None:
            result = translate(model, reader, request.output_path, options, report, is_canceled)
        else:
            result = _translate_resampled(model, reader, plan.grid, request, options, report, is_canceled, say)
    finally:
        compile_seconds = model.compile_seconds
        model.close()
    if not result.canceled:
        compiled = f"; OpenVINO compiled in {compile_seconds:.1f} s" if compile_seconds >= 0.05 else ""
        say(f"{result.tiles} tiles in {result.seconds:.1f} s ({result.mpx_per_s:.2f} Mpx/s{compiled}) with "
            f"{result.backend} {result.precision} on {result.provider}.")
        for message in result.messages:
            say(message)
    return JobResult(result, contract)


def _translate_resampled(model: Model, reader: GridReader, grid: Grid, request: TranslationRequest,
                         options: TranslateOptions, report: Progress, is_canceled: IsCanceled | None,
                         say: Log) -> TranslateResult:
    """Translate on ``grid`` into a scratch folder beside the output, then warp the results onto the layer's grid."""
    from .engine import translate

    categorical_input = request.direction is Direction.LANDCOVER_TO_RGB
    native = Grid.of_info(reader.info)
    out = Path(request.output_path)
    if not out.parent.is_dir():
        raise OutputError(f"Cannot write {out}: the folder {out.parent} does not exist.")
    try:
        scratch = Path(tempfile.mkdtemp(prefix=".lcgan-", dir=out.parent))
    except OSError as exc:
        raise OutputError(f"Cannot write {out}: {exc.strerror or exc} (folder {out.parent}).") from None
    try:
        coarse_out = scratch / "output.tif"
        coarse_conf = scratch / "confidence.tif" if request.confidence_path else None
        coarse_options = replace(options, confidence_path=str(coarse_conf) if coarse_conf else None)
        with contextlib.closing(reader.on_grid(grid, categorical=categorical_input)) as coarse_reader:
            result = translate(model, coarse_reader, coarse_out, coarse_options,
                               lambda f: report(TRANSLATE_SHARE * f), is_canceled)
        if result.canceled:
            return result
        if not coarse_out.is_file():
            raise InputRasterError(f"Layer '{reader.info.name}': the engine wrote no output at the model's GSD.")
        finals = [(coarse_out, out, not categorical_input)]
        if coarse_conf is not None and request.confidence_path:
            finals.append((coarse_conf, Path(request.confidence_path), False))
        try:
            for i, (src, dst, categorical) in enumerate(finals):
                share = (1.0 - TRANSLATE_SHARE) / len(finals)
                warp_to_grid(src, dst, native, categorical,
                             progress=lambda f, i=i, share=share: report(TRANSLATE_SHARE + share * (i + f)),
                             is_canceled=is_canceled)
        except (Canceled, OutputError):
            for _src, dst, _categorical in finals:  # all or nothing
                with contextlib.suppress(FileNotFoundError):
                    dst.unlink()
            if is_canceled is not None and is_canceled():
                return replace(result, output_path=None, confidence_path=None, canceled=True)
            raise
        report(1.0)
        say(f"Resampled the result from {grid.pixel_size[0]:.3g} back to the layer's {native.pixel_size[0]:.3g} "
            "CRS units per pixel.")
        return replace(result, output_path=str(out), confidence_path=request.confidence_path)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
