"""The engine's streaming loop (:func:`run_windows`): read ahead, run the model, blend, write finished rows.

A read-ahead thread reads and converts the next windows (:func:`_items`) while the model runs the current batch;
windows are accumulated in row-major order by :class:`Blender`, which keeps only three float buffers: the current
window, the part of it the next window in the strip overlaps (``carry``) and the rows the next strip overlaps
(``band``, as wide as the windows' span but only ``overlap`` rows high). Pixels no later window touches are final:
they are post-processed, cut to the region being written (:class:`Crop`) and handed to a
:class:`~lcgan_qgis.core.rasters.output.RowSink` that writes whole block rows. Memory therefore depends on the window
size, the overlap and the region's width, never its height; a region wider than :data:`MAX_STRIP_WIDTH_PX` runs in
vertical stripes (each with the whole grid's windows and weights over it), so memory stays bounded for any width.
Windows without a valid pixel skip the model (:func:`has_valid_pixel`), and every batch runs under a
:class:`~lcgan_qgis.core.run.watchdog.Watchdog`. :func:`lcgan_qgis.core.run.engine.translate_region` owns the plan,
the writers and the result.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..model.contract import Direction, ModelContract
from ..model.runtime import Model
from ..rasters.aoi import AreaOfInterest
from ..rasters.geotiff import GeoTiffWriter
from ..rasters.output import RowSink, output_spec, postprocess
from ..rasters.raster import RasterReader, Window, read_valid_mask
from ..rasters.validity import image_valid
from .bounds import check_batch
from .preprocess import InputPlan
from .tiling import Tiling
from .watchdog import Watchdog

READ_AHEAD_BATCHES = 2


@dataclass
class _Item:
    """One grid cell on its way through the pipeline (``x`` is None for cells outside the area of interest)."""

    row: int
    col: int
    x: np.ndarray | None
    valid: np.ndarray | None


class Blender:
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

    def skip(self, r: int, c: int) -> tuple[int, int]:
        """Window ``(r, c)`` is all nodata (no valid pixel, or outside the area of interest): nothing to blend, as
        every pixel it shares with a neighbour is nodata too; returns the (rows, cols) of its final part."""
        rows, cols = self.tiling.rows, self.tiling.cols
        self.carry = None
        return rows.final_stop(r) - rows.starts[r], cols.final_stop(c) - cols.starts[c]

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
    try:
        for r, c, run in cells:
            if stop.is_set():
                return
            if not run:
                item = _Item(r, c, None, None)
            else:
                item = _Item(r, c, *read_input(reader, tiling, r, c, plan, contract))  # (x None: all nodata)
            _put(out, item, stop)
        _put(out, None, stop)
    except BaseException as exc:  # (handed to the consumer thread, which re-raises it)
        _put(out, exc, stop)


def read_input(reader: RasterReader, tiling: Tiling, r: int, c: int, plan: InputPlan,
               contract: ModelContract) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Grid cell ``(r, c)``'s model input (its phase-0 input window, :meth:`~.tiling.Tiling.input_window`,
    reflected up to the padded shape) and its own window's valid mask: :func:`model_input`."""
    info = reader.info
    window, (pr, pc) = tiling.input_window(r, c, info.height, info.width)
    own = (slice(pr, pr + tiling.rows.extent), slice(pc, pc + tiling.cols.extent))
    return model_input(reader, window, own, tiling.padded_shape, plan, contract)


def model_input(reader: RasterReader, window: Window, own: tuple[slice, slice], shape: tuple[int, int],
                plan: InputPlan, contract: ModelContract) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The model input read from ``window`` (converted, reflected up to ``shape``) and the valid mask of its ``own``
    pixels (the part whose output is kept); ``(None, None)`` when those hold no pixel to translate (the model is not
    run: their output is nodata)."""
    pixels, mask = reader.read(window, plan.bands), read_valid_mask(reader, window, plan.bands)
    if not has_valid_pixel(contract, plan, pixels[(slice(None), *own)], None if mask is None else mask[own]):
        return None, None
    x, valid = plan.convert(contract, pixels, reader.info.name, window, mask)
    if shape != x.shape[1:]:
        x = np.pad(x, ((0, 0), (0, shape[0] - x.shape[1]), (0, shape[1] - x.shape[2])), mode="reflect")
    return x, valid[own]


def has_valid_pixel(contract: ModelContract, plan: InputPlan, pixels: np.ndarray, mask: np.ndarray | None) -> bool:
    """Whether a window holds any pixel the model must translate; one without gets nodata and no inference, so the
    work follows the data, not the canvas (a large raster with a little data, two far-apart rasters in one VRT).

    Land cover: a pixel that is masked, at the raster's nodata value or at the scheme's nodata code is nodata (any
    other code is a class: the pre-scan refused unknown ones); imagery: the one rule of
    :func:`~lcgan_qgis.core.rasters.validity.image_valid`.
    """
    if contract.direction is not Direction.LANDCOVER_TO_RGB:
        return bool(image_valid(pixels, plan.nodata, mask).any())
    codes = pixels[0]
    data = codes != contract.scheme.nodata_code
    if plan.nodata[0] is not None:
        data &= codes != plan.nodata[0]
    if mask is not None:
        data &= mask
    return bool(data.any())


def region_has_data(reader: RasterReader, region: Window, plan: InputPlan, contract: ModelContract,
                    strip_rows: int = 512) -> bool:
    """Whether any pixel of ``region`` is one the model must translate (:func:`has_valid_pixel`), read in strips of
    ``strip_rows`` (memory bounded by the region's width): a mosaic plans no task for a super-tile without data."""
    for top in range(region.row_off, region.row_end, strip_rows):
        strip = Window(region.col_off, top, region.width, min(strip_rows, region.row_end - top))
        if has_valid_pixel(contract, plan, reader.read(strip, plan.bands), read_valid_mask(reader, strip, plan.bands)):
            return True
    return False


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


#: A region wider than this is run in vertical stripes of :data:`STRIPE_PX` (each with the whole grid's windows and
#: weights over it: the pixels are the same), so memory follows the stripe, not the raster's width.
MAX_STRIP_WIDTH_PX = 16384
STRIPE_PX = 8192  # (a multiple of the writer's 256 px blocks: each stripe writes whole blocks)


class _Shifted:
    """A writer seen from a stripe: its column 0 is ``col_off`` of the output."""

    def __init__(self, writer: GeoTiffWriter, col_off: int) -> None:
        self.writer, self.col_off = writer, col_off

    def write(self, row_off: int, col_off: int, pixels: np.ndarray) -> None:
        self.writer.write(row_off, col_off + self.col_off, pixels)

    def flush(self) -> None:
        self.writer.flush()


def run_windows(model: Model, reader: RasterReader, tiling: Tiling, plan: InputPlan, batch_size: int, region: Window,
                cells: list[tuple[int, int, bool]], writers: list[GeoTiffWriter], aoi: AreaOfInterest | None,
                report: Callable[[float], None], canceled: Callable[[], bool], to_run: int) -> bool:
    """The streaming loop over ``tiling`` (the windows touching ``region``); writes ``region``'s pixels; returns
    False when cancelled. A region wider than :data:`MAX_STRIP_WIDTH_PX` runs stripe by stripe."""
    guard = Watchdog(model, canceled)  # (inference where a cancel or a time limit can stop it)
    check_batch(model, batch_size)
    stripes = [(tiling, region, cells)]
    if region.width > MAX_STRIP_WIDTH_PX:
        stripes = []
        for c0 in range(region.col_off, region.col_end, STRIPE_PX):
            part = Window(c0, region.row_off, min(STRIPE_PX, region.col_end - c0), region.height)
            sub = tiling.covering(part)
            stripes.append((sub, part, [(r, c, aoi is None or aoi.touches(sub.window(r, c)))
                                        for r in range(sub.rows.count) for c in range(sub.cols.count)]))
    total, seen = sum(len(c) for _t, _p, c in stripes), [0]

    def progress(n: int) -> None:
        seen[0] += n
        report(min(seen[0] / max(total, 1), 0.999))

    for sub, part, sub_cells in stripes:
        shifted = [_Shifted(w, part.col_off - region.col_off) for w in writers] if len(stripes) > 1 else writers
        if not _run_stripe(model, guard, reader, sub, plan, batch_size, part, sub_cells, shifted, aoi, progress,
                           canceled):
            return False
    return True


def _run_stripe(model: Model, guard: Watchdog, reader: RasterReader, tiling: Tiling, plan: InputPlan,
                batch_size: int, region: Window, cells: list[tuple[int, int, bool]], writers: list[Any],
                aoi: AreaOfInterest | None, progress: Callable[[int], None], canceled: Callable[[], bool]) -> bool:
    """The row-major loop over one stripe's windows (all of ``region`` when it is not split)."""
    contract = model.contract
    rows, cols = tiling.rows, tiling.cols
    blender = Blender(tiling, contract.out_channels, cols.span)
    sink = RowSink(writers, region.height)
    crop = Crop(region, rows.offset, cols.offset)
    want_confidence = len(writers) > 1
    spec = output_spec(contract)
    strip: list[np.ndarray] = []
    current_row = -1
    items = _items(cells, tiling, reader, plan, contract, batch_size)
    try:
        for batch in _batches(items, batch_size):
            if canceled():
                return False
            outputs: list[np.ndarray | None]
            if batch[0].x is None:
                outputs = [None]
            else:
                y = guard.run(np.stack([item.x for item in batch]))
                if y is None:  # cancelled while the model ran
                    return False
                outputs = [y[i, :, rows.phase(item.row):rows.phase(item.row) + rows.extent,
                             cols.phase(item.col):cols.phase(item.col) + cols.extent] for i, item in enumerate(batch)]
            for item, y in zip(batch, outputs):
                if item.row != current_row:
                    current_row = item.row
                    blender.start_strip(item.row)
                    strip = _new_strip(spec.bands, spec.dtype, rows.final_stop(item.row) - rows.starts[item.row],
                                       cols.length, want_confidence)
                x0, y0 = cols.starts[item.col], rows.starts[item.row]
                if item.valid is None:  # all nodata: no blending, no post-processing
                    width = blender.skip(item.row, item.col)[1]
                    strip[0][:, :, x0:x0 + width] = spec.nodata
                    if want_confidence:
                        strip[1][:, :, x0:x0 + width] = 0.0
                else:
                    final = blender.add(item.row, item.col, y)
                    valid = item.valid[:final.shape[1], :final.shape[2]]
                    if aoi is not None:
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
            progress(len(batch))
    finally:
        items.close()
    return True


@dataclass(frozen=True)
class Crop:
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
