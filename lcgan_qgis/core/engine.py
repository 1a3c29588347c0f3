"""The translation engine: streaming, blended, sliding-window inference of a model over a raster of any size.

Flow of :func:`translate`:

1. check the output path and the options, and plan the input (:func:`preprocess.plan_input`: bands, nodata,
   radiometry; land cover is pre-scanned so unknown codes fail before any inference);
2. lay a grid of equal windows over the raster (:mod:`tiling`): large windows (``window_px``, shrunk to fit the
   raster evenly) that overlap by at least ``overlap_px``, blended with separable raised-cosine weights that sum
   to 1 at every pixel;
3. a read-ahead thread reads and converts the next windows while onnxruntime runs the current batch;
4. windows are accumulated in row-major order; only three float buffers live at a time: the current window, the
   part of it the next window in the strip overlaps (``carry``) and the rows the next strip overlaps (``band``,
   full width but only ``overlap`` rows high). Pixels no later window touches are final: they are post-processed
   and handed to a :class:`~lcgan_qgis.core.output.RowSink` that writes whole block rows. Memory therefore
   depends on the window size, the overlap and the raster width, never on its height;
5. the GeoTIFF is written under a temporary name and moved into place on success; cancel or error removes it.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .aoi import AreaOfInterest
from .contract import Direction, ModelContract
from .errors import OptionError, OutputError
from .gdal_io import GeoTiffWriter
from .output import RowSink, open_writer, output_spec, postprocess, style_output
from .preprocess import InputPlan, plan_input
from .raster import RasterInfo, RasterReader, Window
from .runtime import Model
from .tiling import Tiling, fit_window, make_tiling

log = logging.getLogger(__name__)

DEFAULT_WINDOW_PX = 512
READ_AHEAD_BATCHES = 2


@dataclass(frozen=True)
class TranslateOptions:
    """Options of one run; every default is the model's or the engine's recommended choice."""

    overlap_px: int | None = None  # None: the model's recommended overlap
    batch_size: int = 1
    bands: tuple[int, ...] | None = None  # 1-based input bands for imagery input (None: 1..n); unused for land cover
    radiometry_mode: str | None = None  # None: the model's; "fixed" | "percentile"
    aoi_wkt: str | None = None  # polygon in the raster's CRS; windows not touching it are skipped, outside = nodata
    confidence_path: str | None = None  # land-cover output only: also write the max probability (float32 0..1)
    window_px: int | None = None  # inference window size (None: DEFAULT_WINDOW_PX)
    overwrite: bool = True  # False: refuse an existing output (OutputError)


@dataclass(frozen=True)
class TranslateResult:
    """What a run did. ``output_path`` is None when the run was cancelled."""

    output_path: str | None
    confidence_path: str | None
    canceled: bool
    provider: str
    tiles: int
    seconds: float
    mpx_per_s: float
    messages: tuple[str, ...] = field(default_factory=tuple)


@dataclass
class _Item:
    """One grid cell on its way through the pipeline (``x`` is None for cells outside the area of interest)."""

    row: int
    col: int
    x: np.ndarray | None
    valid: np.ndarray | None


def _check_output(path: Path, info: RasterInfo, options: TranslateOptions) -> None:
    targets = [path] + ([Path(options.confidence_path)] if options.confidence_path else [])
    for target in targets:
        try:
            same = Path(info.name).exists() and target.exists() and target.resolve() == Path(info.name).resolve()
        except OSError:
            same = False
        if same or str(target) == info.name:
            raise OutputError(f"The output {target} is the input raster; choose another output path.")
        if target.exists() and not options.overwrite:
            raise OutputError(f"The output {target} exists; remove it or allow overwriting.")
        if target.exists() and target.is_dir():
            raise OutputError(f"The output {target} is a folder; give a file name (e.g. result.tif).")
        folder = target.parent if str(target.parent) else Path(".")
        if not folder.is_dir():
            raise OutputError(f"The output folder {folder} does not exist.")
        if not os.access(folder, os.W_OK):
            raise OutputError(f"The output folder {folder} is not writable.")
    if options.confidence_path and Path(options.confidence_path) == path:
        raise OutputError(f"The confidence output and the output are the same file ({path}).")


def _check_options(options: TranslateOptions, contract: ModelContract) -> tuple[int, int]:
    """Validate options; returns (overlap_px, window_px)."""
    overlap = contract.overlap_px if options.overlap_px is None else options.overlap_px
    if not isinstance(overlap, int) or isinstance(overlap, bool) or overlap < 0:
        raise OptionError(f"overlap_px must be an integer >= 0, got {overlap!r}.")
    if not isinstance(options.batch_size, int) or options.batch_size < 1:
        raise OptionError(f"batch_size must be an integer >= 1, got {options.batch_size!r}.")
    multiple = contract.size_multiple_px
    window = DEFAULT_WINDOW_PX if options.window_px is None else options.window_px
    if not isinstance(window, int) or isinstance(window, bool) or window < multiple:
        raise OptionError(f"window_px must be an integer >= {multiple}, got {window!r}.")
    if window % multiple:
        raise OptionError(f"window_px {window} must be a multiple of the model's size multiple {multiple}.")
    if 2 * overlap >= window:
        raise OptionError(f"overlap_px {overlap} must be less than half of the window ({window} px); lower the "
                          f"overlap or raise window_px.")
    if options.confidence_path and contract.direction is not Direction.RGB_TO_LANDCOVER:
        raise OptionError("A confidence raster exists only for land-cover output (imagery -> land cover models).")
    return overlap, window


def _gsd_messages(contract: ModelContract, info: RasterInfo) -> list[str]:
    """Advice when the raster's pixel size is far from the model's training GSD (never an error)."""
    from osgeo import osr

    if not info.crs_wkt:
        return [f"{info.name} has no CRS; the output will have none either."]
    srs = osr.SpatialReference()
    if srs.ImportFromWkt(info.crs_wkt) != 0:
        return []
    if srs.IsGeographic():
        return [f"{info.name} is in geographic coordinates (degrees); the model was trained at {contract.gsd_m:g} m "
                "per pixel. Reproject to a metric CRS for faithful results."]
    metres = srs.GetLinearUnits() or 1.0
    gsd = max(info.pixel_size) * metres
    ratio = gsd / contract.gsd_m
    if ratio > 2.0 or ratio < 0.5:
        return [f"{info.name} has {gsd:.3g} m pixels, the model was trained at {contract.gsd_m:g} m ({ratio:.2g}x); "
                "results may be poor. Resample the input to the model's resolution."]
    return []


class _Blender:
    """Accumulates weighted window outputs in row-major order and emits final pixels strip by strip."""

    def __init__(self, tiling: Tiling, channels: int, width: int) -> None:
        self.tiling = tiling
        self.channels = channels
        self.width = width
        self.band: np.ndarray | None = None  # rows this strip shares with the previous one (full width)
        self.next_band: np.ndarray | None = None
        self.carry: np.ndarray | None = None  # columns this window shares with the previous one

    def start_strip(self, r: int) -> None:
        rows = self.tiling.rows
        self.band, self.next_band, self.carry = self.next_band, None, None
        shared = rows.stop(r) - rows.final_stop(r)
        if shared > 0:
            self.next_band = np.zeros((self.channels, shared, self.width), dtype=np.float32)

    def add(self, r: int, c: int, y: np.ndarray | None) -> np.ndarray:
        """Blend window ``(r, c)``'s output ``y`` (``(C, extent_h, extent_w)``, None = zeros); returns its final
        part ``(C, final rows, final cols)``."""
        tiling = self.tiling
        rows, cols = tiling.rows, tiling.cols
        eh, ew = rows.extent, cols.extent
        acc = np.zeros((self.channels, eh, ew), np.float32) if y is None else y * tiling.weight(r, c)[None]
        x0 = cols.starts[c]
        lw = 0
        if self.carry is not None:
            lw = self.carry.shape[2]
            acc[:, :, :lw] += self.carry
        if self.band is not None:
            bh = self.band.shape[1]
            acc[:, :bh, lw:] += self.band[:, :, x0 + lw:x0 + ew]
        sr, sc = rows.final_stop(r) - rows.starts[r], cols.final_stop(c) - x0
        self.carry = acc[:, :, sc:].copy() if sc < ew else None
        if self.next_band is not None:
            self.next_band[:, :, x0:x0 + sc] = acc[:, sr:, :sc]
        return acc[:, :sr, :sc]


def _produce(cells: list[tuple[int, int, bool]], tiling: Tiling, reader: RasterReader, plan: InputPlan,
             contract: ModelContract, out: queue.Queue, stop: threading.Event) -> None:
    """Read-ahead thread: read and convert windows in order; puts _Item, then None; an exception is put as is."""
    ph, pw = tiling.padded_shape
    try:
        for r, c, run in cells:
            if stop.is_set():
                return
            if not run:
                item = _Item(r, c, None, None)
            else:
                window = tiling.window(r, c)
                x, valid = plan.convert(contract, reader.read(window, plan.bands), reader.info.name, window)
                if (ph, pw) != x.shape[1:]:
                    x = np.pad(x, ((0, 0), (0, ph - x.shape[1]), (0, pw - x.shape[2])), mode="reflect")
                item = _Item(r, c, x, valid)
            _put(out, item, stop)
        _put(out, None, stop)
    except BaseException as exc:  # (handed to the consumer thread, which re-raises it)
        _put(out, exc, stop)


def _put(out: queue.Queue, item: object, stop: threading.Event) -> None:
    """Queue ``item`` for the consumer; drop it once the consumer has stopped (a full queue must not block the
    read-ahead thread, or the consumer's ``join`` would wait for its timeout after an error or a cancel)."""
    while not stop.is_set():
        try:
            out.put(item, timeout=0.1)
            return
        except queue.Full:
            continue


def _items(cells: list[tuple[int, int, bool]], tiling: Tiling, reader: RasterReader, plan: InputPlan,
           contract: ModelContract, batch_size: int) -> Iterator[_Item]:
    """The pipeline's items, read ahead by a worker thread (stopped when the iterator is closed)."""
    q: queue.Queue = queue.Queue(maxsize=READ_AHEAD_BATCHES * batch_size)
    stop = threading.Event()
    worker = threading.Thread(target=_produce, args=(cells, tiling, reader, plan, contract, q, stop),
                              name="lcgan-read-ahead", daemon=True)
    worker.start()
    try:
        while True:
            item = q.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join(timeout=30)


def _batches(items: Iterator[_Item], batch_size: int) -> Iterator[list[_Item]]:
    """Group consecutive runnable items into batches; a skipped item is its own batch."""
    pending: list[_Item] = []
    for item in items:
        if item.x is None:
            if pending:
                yield pending
                pending = []
            yield [item]
            continue
        pending.append(item)
        if len(pending) == batch_size:
            yield pending
            pending = []
    if pending:
        yield pending


@dataclass(frozen=True)
class RunPlan:
    """What a run decides from the whole raster before any inference (:func:`plan_run`).

    The same plan serves a run over the whole raster and a run over any part of it (:func:`translate_region`, one
    super-tile of a distributed job): the window grid, the radiometry and the nodata rules are the whole raster's,
    so every part blends exactly as the whole run does. Small and picklable (the grid is rebuilt by :meth:`tiling`).
    """

    info: RasterInfo
    input: InputPlan
    window_h: int
    window_w: int
    overlap_px: int
    size_multiple_px: int
    batch_size: int = 1
    aoi_wkt: str | None = None
    messages: tuple[str, ...] = ()

    def tiling(self) -> Tiling:
        """The window grid of the whole raster."""
        info = self.info
        return make_tiling(info.height, info.width, self.window_h, self.window_w, self.overlap_px,
                           self.size_multiple_px)

    @property
    def whole(self) -> Window:
        """The whole raster as a window."""
        return Window(0, 0, self.info.width, self.info.height)


def plan_run(contract: ModelContract, reader: RasterReader,
             options: TranslateOptions = TranslateOptions(),  # noqa: B008 (frozen, immutable default)
             is_canceled: Callable[[], bool] | None = None) -> RunPlan:
    """Check the options and the raster against the model and lay the window grid (no inference, no output).

    Raises:
        OptionError, InputRasterError: with a message naming the option or the raster.
    """
    info = reader.info
    overlap, window_px = _check_options(options, contract)
    plan = plan_input(contract, reader, options.bands, options.radiometry_mode, is_canceled)
    multiple = contract.size_multiple_px
    return RunPlan(
        info=info, input=plan,
        window_h=fit_window(info.height, window_px, overlap, multiple),
        window_w=fit_window(info.width, window_px, overlap, multiple),
        overlap_px=overlap, size_multiple_px=multiple, batch_size=options.batch_size, aoi_wkt=options.aoi_wkt,
        messages=(*plan.messages, *_gsd_messages(contract, info)),
    )


def translate(model: Model, reader: RasterReader, output_path: str | Path,
              options: TranslateOptions = TranslateOptions(),  # noqa: B008 (frozen, immutable default)
              progress: Callable[[float], None] | None = None,
              is_canceled: Callable[[], bool] | None = None) -> TranslateResult:
    """Translate ``reader``'s raster with ``model`` into a GeoTIFF at ``output_path``.

    Args:
        model: a loaded model (:func:`~lcgan_qgis.core.runtime.load_model`).
        reader: the input raster.
        output_path: the GeoTIFF to write (same CRS, geotransform and size as the input).
        options: see :class:`TranslateOptions`.
        progress: called with the fraction done (0..1).
        is_canceled: polled between windows; when it returns True the run stops and leaves no file.

    Returns:
        A :class:`TranslateResult` (``canceled=True`` and no output when cancelled).

    Raises:
        InputRasterError, OptionError, OutputError, DeviceError: with a message naming the raster, option or file.
    """
    started = time.perf_counter()
    canceled = is_canceled or (lambda: False)
    _check_options(options, model.contract)
    _check_output(Path(output_path), reader.info, options)
    plan = plan_run(model.contract, reader, options, canceled)
    if canceled():
        return _canceled(model, started, list(plan.messages))
    result = translate_region(model, reader, plan, plan.whole, output_path, options.confidence_path, progress,
                              canceled)
    if result.canceled:
        return result
    seconds = time.perf_counter() - started
    return replace(result, seconds=seconds, mpx_per_s=plan.info.width * plan.info.height / 1e6 / max(seconds, 1e-9))


def translate_region(model: Model, reader: RasterReader, plan: RunPlan, region: Window, output_path: str | Path,
                     confidence_path: str | None = None, progress: Callable[[float], None] | None = None,
                     is_canceled: Callable[[], bool] | None = None) -> TranslateResult:
    """Translate the part ``region`` of the raster ``plan`` was made for into a GeoTIFF of that part.

    Runs the windows of the whole raster's grid that touch ``region`` (:meth:`~lcgan_qgis.core.tiling.Tiling.
    covering`), blended with the whole grid's weights, so the pixels written equal those of :func:`translate` over
    the whole raster (which is this function with ``region = plan.whole``). The output is georeferenced to the part.

    Args:
        model: a loaded model whose contract ``plan`` was made with.
        reader: the whole raster (windows are read in its coordinates).
        plan: from :func:`plan_run`.
        region: pixels to write, inside the raster.
        output_path, confidence_path: the GeoTIFF(s) to write (written under a temporary name, then renamed).
        progress, is_canceled: as for :func:`translate`.

    Raises:
        OptionError: ``region`` is not inside the raster.
        InputRasterError, OutputError, DeviceError: as for :func:`translate`.
    """
    started = time.perf_counter()
    contract, info = model.contract, plan.info
    canceled = is_canceled or (lambda: False)
    report = progress or (lambda _f: None)
    messages = list(plan.messages)
    if plan.whole.intersection(region) != region:
        raise OptionError(f"The region {region} is not inside the {info.width}x{info.height} raster {info.name}.")
    tiling = plan.tiling().covering(region)
    aoi = AreaOfInterest(plan.aoi_wkt, info) if plan.aoi_wkt else None
    cells = [(r, c, aoi is None or aoi.touches(tiling.window(r, c)))
             for r in range(tiling.rows.count) for c in range(tiling.cols.count)]
    to_run = sum(run for _r, _c, run in cells)
    spec = output_spec(contract)
    log.info("%s: %dx%d px at (%d, %d), %d of %d windows of %dx%d (padded %s), overlap %d px, batch %d, %s",
             info.name, region.width, region.height, region.col_off, region.row_off, to_run, len(cells),
             tiling.rows.extent, tiling.cols.extent, tiling.padded_shape, plan.overlap_px, plan.batch_size,
             model.provider)
    if canceled():
        return _canceled(model, started, messages)
    report(0.0)
    part = _region_info(info, region)
    writers: list[GeoTiffWriter] = []
    try:
        writers.append(open_writer(str(output_path), part, spec.bands, spec.dtype, spec.nodata))
        style_output(writers[0], contract)
        if confidence_path:
            writers.append(open_writer(confidence_path, part, 1, np.dtype(np.float32), 0.0))
            writers[1].band(1).SetDescription("confidence (max class probability)")
        done = _run(model, reader, tiling, plan, region, cells, writers, aoi, report, canceled, to_run)
        if not done:
            for writer in writers:
                writer.abort()
            return _canceled(model, started, messages)
        for writer in writers:
            writer.commit()
    except BaseException:
        for writer in writers:
            writer.abort()
        raise
    seconds = time.perf_counter() - started
    report(1.0)
    return TranslateResult(
        output_path=str(output_path), confidence_path=confidence_path, canceled=False,
        provider=model.provider, tiles=to_run, seconds=seconds,
        mpx_per_s=region.width * region.height / 1e6 / max(seconds, 1e-9), messages=tuple(messages),
    )


def _region_info(info: RasterInfo, region: Window) -> RasterInfo:
    """``info`` cut to ``region``: its size, and a geotransform whose origin is the region's corner."""
    x0, dx, rx, y0, ry, dy = info.geotransform
    origin = (x0 + region.col_off * dx + region.row_off * rx, dx, rx,
              y0 + region.col_off * ry + region.row_off * dy, ry, dy)
    return replace(info, width=region.width, height=region.height, geotransform=origin)


def _canceled(model: Model, started: float, messages: list[str]) -> TranslateResult:
    return TranslateResult(None, None, True, model.provider, 0, time.perf_counter() - started, 0.0,
                           (*messages, "Cancelled; nothing was written."))


def _run(model: Model, reader: RasterReader, tiling: Tiling, plan: RunPlan, region: Window,
         cells: list[tuple[int, int, bool]], writers: list[GeoTiffWriter], aoi: AreaOfInterest | None,
         report: Callable[[float], None], canceled: Callable[[], bool], to_run: int) -> bool:
    """The streaming loop over ``tiling`` (the windows touching ``region``); writes ``region``'s pixels; returns
    False when cancelled."""
    contract = model.contract
    rows, cols = tiling.rows, tiling.cols
    blender = _Blender(tiling, contract.out_channels, cols.span)
    sink = RowSink(writers, region.height)
    crop = _Crop(region, rows.offset, cols.offset)
    want_confidence = len(writers) > 1
    spec = output_spec(contract)
    strip: list[np.ndarray] = []
    done = 0
    current_row = -1
    items = _items(cells, tiling, reader, plan.input, contract, plan.batch_size)
    try:
        for batch in _batches(items, plan.batch_size):
            if canceled():
                return False
            outputs: list[np.ndarray | None]
            if batch[0].x is None:
                outputs = [None]
            else:
                y = model.run(np.stack([item.x for item in batch]))
                outputs = [y[i, :, :rows.extent, :cols.extent] for i in range(len(batch))]
                done += len(batch)
            for item, y in zip(batch, outputs, strict=True):
                if item.row != current_row:
                    current_row = item.row
                    blender.start_strip(item.row)
                    strip = _new_strip(spec.bands, spec.dtype, rows.final_stop(item.row) - rows.starts[item.row],
                                       cols.length, want_confidence)
                final = blender.add(item.row, item.col, y)
                x0, y0 = cols.starts[item.col], rows.starts[item.row]
                valid = np.zeros(final.shape[1:], bool) if item.valid is None else \
                    item.valid[:final.shape[1], :final.shape[2]]
                if aoi is not None and item.valid is not None:
                    valid = valid & aoi.mask(Window(cols.offset + x0, rows.offset + y0, final.shape[2],
                                                    final.shape[1]))
                pixels, confidence = postprocess(contract, final, valid, want_confidence)
                strip[0][:, :, x0:x0 + final.shape[2]] = pixels
                if confidence is not None:
                    strip[1][:, :, x0:x0 + final.shape[2]] = confidence
                if item.col == cols.count - 1:
                    cut = crop(rows.starts[item.row], strip)
                    if cut:
                        sink.add(cut)
            report(min(done / max(to_run, 1), 0.999))
    finally:
        items.close()
    return True


@dataclass(frozen=True)
class _Crop:
    """Cuts finished strips (in the tiling's coordinates) to the region being written."""

    region: Window
    row_offset: int
    col_offset: int

    def __call__(self, top: int, strip: list[np.ndarray]) -> list[np.ndarray]:
        """The part of ``strip`` (rows from ``top``) inside the region; empty when none of it is."""
        r0 = max(self.region.row_off - self.row_offset, top)
        r1 = min(self.region.row_end - self.row_offset, top + strip[0].shape[1])
        if r1 <= r0:
            return []
        c0 = self.region.col_off - self.col_offset
        c1 = c0 + self.region.width
        return [s[:, r0 - top:r1 - top, c0:c1] for s in strip]


def _new_strip(bands: int, dtype: np.dtype, height: int, width: int, confidence: bool) -> list[np.ndarray]:
    """Output buffers of one strip (every pixel is set by the strip's windows)."""
    strip = [np.empty((bands, height, width), dtype=dtype)]
    if confidence:
        strip.append(np.empty((1, height, width), dtype=np.float32))
    return strip
