"""The translation engine: streaming, blended, sliding-window inference of a model over a raster of any size.

Flow of :func:`translate`:

1. check the output paths (:func:`~lcgan_qgis.core.rasters.sources.check_output_paths`) and the windows against the
   model (:meth:`~lcgan_qgis.core.run.settings.Windowing.fit`; the settings checked themselves when built), and plan
   the input (:func:`preprocess.plan_input`: bands, nodata, radiometry; land cover is pre-scanned so unknown codes
   fail before any inference);
2. lay a grid of equal windows over the raster (:mod:`.tiling`): large windows (``window_px``, shrunk to fit the
   raster evenly) that overlap by at least ``overlap_px``, blended with separable raised-cosine weights that sum
   to 1 at every pixel;
3. a read-ahead thread reads and converts the next windows while onnxruntime runs the current batch, and the
   windows are blended and streamed to the writer in whole block rows, with memory bounded by the window size, the
   overlap and the raster width, never its height (:mod:`.streaming`);
4. the GeoTIFF is written under a temporary name and moved into place on success; cancel or error removes it.

Steps 1-2 are :func:`plan_run` (a :class:`RunPlan`, decided from the whole raster once); steps 3-4 are
:func:`translate_region`, over the whole raster or over any part of its one window grid with the whole grid's
weights (a super-tile of a distributed job, :mod:`lcgan_qgis.mosaic`), so a part's pixels are the whole run's.

The engine translates on the grid its reader presents. Whether a raster must first be brought to the model's ground
sample distance is the job's decision (:func:`lcgan_qgis.core.run.job.run_translation`, one policy for every caller).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..errors import Canceled, InputRasterError, OptionError
from ..model.contract import Direction, ModelContract
from ..model.runtime import Model
from ..rasters.aoi import AreaOfInterest
from ..rasters.geotiff import GeoTiffWriter
from ..rasters.output import CONFIDENCE_NODATA, open_writer, output_spec, style_output
from ..rasters.raster import RasterInfo, RasterReader, Window
from ..rasters.sources import check_output_paths
from ..storage.files import stale_partial_messages
from ..terrain.elevation import (
    ElevationReader,
    TerrainPlan,
    ignored_elevation_message,
    require_elevation,
    settle_terrain,
)
from .preprocess import InputPlan, plan_input
from .settings import RunSettings
from .streaming import run_windows
from .tiling import Tiling, fit_window, make_tiling

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TranslateOptions:
    """Options of one engine run; every default is the model's or the engine's recommended choice.

    Attributes:
        settings: the run's settings; the engine reads the windowing, the image input, the terrain's sun and unit
            (the DEM itself comes open, as ``elevation``), the rendering and the area of interest.
        confidence_path: land-cover output only: also write the max probability (float32 0..1) here.
        overwrite: ``False`` refuses an existing output (:class:`~lcgan_qgis.core.errors.OutputError`).
        overviews: build internal overviews of every output (fast display at small scales).
        tags: dataset metadata of every output (the job's provenance tags).
    """

    settings: RunSettings = field(default_factory=RunSettings)
    confidence_path: str | None = None
    overwrite: bool = True
    overviews: bool = True
    tags: tuple[tuple[str, str], ...] = ()


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
    backend: str = "onnxruntime"  # which inference backend ran (``Model.backend``)
    precision: str = "fp32"  # and at which precision (``Model.precision``)


@dataclass(frozen=True)
class RunPlan:
    """What a run decides from the whole raster before any inference (:func:`plan_run`).

    The same plan serves a run over the whole raster and a run over any part of it (:func:`translate_region`, one
    super-tile of a distributed job): the window grid, the radiometry, the nodata rules and the terrain choices are
    the whole raster's, so every part blends exactly as the whole run does. The grid is rebuilt by :meth:`tiling`;
    :meth:`portable` drops the open DEM of a terrain-aware plan so the plan can travel to another process, which
    opens the DEM again with :meth:`with_elevation`.

    Attributes:
        info: the whole raster.
        input: bands, nodata, radiometry, the terrain channels and the seed of the model input.
        window_h, window_w, overlap_px, size_multiple_px: the window grid (:meth:`tiling`).
        options: the run's options (batch size, area of interest, tags and overviews are read from them).
        messages: what the plan has to say about the input.
        terrain: terrain-aware models: the settled choices (``input.terrain`` reads the DEM).
    """

    info: RasterInfo
    input: InputPlan
    window_h: int
    window_w: int
    overlap_px: int
    size_multiple_px: int
    options: TranslateOptions = field(default_factory=TranslateOptions)
    messages: tuple[str, ...] = ()
    terrain: TerrainPlan | None = None

    @property
    def batch_size(self) -> int:
        return self.options.settings.windowing.batch_size

    @property
    def aoi_wkt(self) -> str | None:
        return self.options.settings.aoi_wkt

    def tiling(self) -> Tiling:
        """The window grid of the whole raster."""
        info = self.info
        return make_tiling(info.height, info.width, self.window_h, self.window_w, self.overlap_px,
                           self.size_multiple_px)

    @property
    def whole(self) -> Window:
        """The whole raster as a window."""
        return Window(0, 0, self.info.width, self.info.height)

    def portable(self) -> RunPlan:
        """This plan without its open DEM (small and picklable); :meth:`with_elevation` gives it back."""
        return replace(self, input=replace(self.input, terrain=None)) if self.input.terrain is not None else self

    def with_elevation(self, contract: ModelContract, elevation: ElevationReader) -> RunPlan:
        """This plan reading its terrain channels from ``elevation`` (the DEM of :attr:`terrain`, opened on the
        plan's grid by the caller, who closes it after the run)."""
        if self.terrain is None or contract.terrain is None:
            return self
        return replace(self, input=replace(self.input, terrain=self.terrain.deriver(contract.terrain, elevation)))


def plan_run(contract: ModelContract, reader: RasterReader,
             options: TranslateOptions = TranslateOptions(),  # noqa: B008 (frozen, immutable default)
             is_canceled: Callable[[], bool] | None = None, elevation: ElevationReader | None = None,
             model_path: str | Path | None = None) -> RunPlan:
    """Check the options and the raster against the model and lay the window grid (no inference, no output).

    Args:
        contract: the model's contract.
        reader: the whole raster.
        options: see :class:`TranslateOptions`.
        is_canceled: polled during the land-cover pre-scan and the DEM's nodata count.
        elevation: the DEM on ``reader``'s grid for terrain-aware models; ignored, with a message, by others.
        model_path: the model's file, named by the message about a missing DEM.

    Raises:
        OptionError, InputRasterError: with a message naming the option or the raster (a terrain-aware model
            without ``elevation`` included).
        Canceled: ``is_canceled`` turned true while the raster or the DEM was scanned.
    """
    info, settings = reader.info, options.settings
    overlap, window_px = settings.windowing.fit(contract)
    if options.confidence_path and contract.direction is not Direction.RGB_TO_LANDCOVER:
        raise OptionError("A confidence raster exists only for land-cover output (imagery -> land cover models).")
    require_elevation(contract, elevation is not None, model_path)
    image = settings.image
    plan = plan_input(contract, reader, image.bands, image.radiometry_mode, is_canceled)
    plan = replace(plan, seed=settings.rendering.seed)
    messages = list(plan.messages)
    if settings.rendering.seed and not contract.noise_channels:
        messages.append(f"The model has no noise channels: the seed {settings.rendering.seed} changes nothing.")
    terrain = None
    if contract.terrain is not None and elevation is not None:
        sun = settings.terrain
        terrain, terrain_messages = settle_terrain(
            contract.terrain, elevation, info, sun_azimuth_deg=sun.sun_azimuth_deg,
            sun_elevation_deg=sun.sun_elevation_deg, metres_per_unit=sun.elevation_unit_m,
            fallback_gsd_m=contract.gsd_m, is_canceled=is_canceled)
        if is_canceled is not None and is_canceled():  # (the nodata count stopped early: its figures are partial)
            raise Canceled("Cancelled; nothing was written.")
        plan = replace(plan, terrain=terrain.deriver(contract.terrain, elevation))
        messages += terrain_messages
    elif elevation is not None:
        messages.append(ignored_elevation_message(elevation.name))
    multiple = contract.size_multiple_px
    return RunPlan(
        info=info, input=plan,
        window_h=fit_window(info.height, window_px, overlap, multiple),
        window_w=fit_window(info.width, window_px, overlap, multiple),
        overlap_px=overlap, size_multiple_px=multiple, options=options, messages=tuple(messages), terrain=terrain,
    )


def translate(model: Model, reader: RasterReader, output_path: str | Path,
              options: TranslateOptions = TranslateOptions(),  # noqa: B008 (frozen, immutable default)
              progress: Callable[[float], None] | None = None,
              is_canceled: Callable[[], bool] | None = None,
              elevation: ElevationReader | None = None) -> TranslateResult:
    """Translate ``reader``'s raster with ``model`` into a GeoTIFF at ``output_path``.

    Args:
        model: a loaded model (:func:`~lcgan_qgis.core.model.runtime.load_model`).
        reader: the input raster.
        output_path: the GeoTIFF to write (same CRS, geotransform and size as the input).
        options: see :class:`TranslateOptions`.
        progress: called with the fraction done (0..1).
        is_canceled: polled between windows; when it returns True the run stops and leaves no file.
        elevation: the DEM on ``reader``'s grid, for terrain-aware models
            (:class:`~lcgan_qgis.core.terrain.elevation.ElevationReader`); ignored, with a message, by a model
            without terrain inputs.

    Returns:
        A :class:`TranslateResult` (``canceled=True`` and no output when cancelled).

    Raises:
        InputRasterError, OptionError, OutputError, DeviceError: with a message naming the raster, option or file.
    """
    check_output_paths(output_path, options.confidence_path, reader.info.name, options.overwrite,
                       elevation.name if elevation is not None else None)
    return translate_checked(model, reader, output_path, options, progress, is_canceled, elevation)


def translate_checked(model: Model, reader: RasterReader, output_path: str | Path, options: TranslateOptions,
                      progress: Callable[[float], None] | None = None,
                      is_canceled: Callable[[], bool] | None = None,
                      elevation: ElevationReader | None = None) -> TranslateResult:
    """:func:`translate` for a caller that has checked the output paths itself (the job checks the final outputs
    once, before it loads the model, whether it translates into them or into a scratch folder)."""
    started = time.perf_counter()
    contract, info = model.contract, reader.info
    is_canceled = is_canceled or (lambda: False)
    notes = list(model.notes) + stale_partial_messages(
        [output_path] + ([options.confidence_path] if options.confidence_path else []))
    try:
        plan = plan_run(contract, reader, options, is_canceled, elevation, getattr(model, "path", None))
    except Canceled:  # during the pre-scan
        return _canceled(model, started, notes)
    if is_canceled():
        return _canceled(model, started, notes + list(plan.messages))
    result = translate_region(model, reader, plan, plan.whole, output_path, options.confidence_path, progress,
                              is_canceled)
    messages = (*notes, *result.messages)
    if result.canceled:
        return replace(result, messages=messages)
    seconds = time.perf_counter() - started
    return replace(result, seconds=seconds, mpx_per_s=info.width * info.height / 1e6 / max(seconds, 1e-9),
                   messages=messages)


def translate_region(model: Model, reader: RasterReader, plan: RunPlan, region: Window, output_path: str | Path,
                     confidence_path: str | None = None, progress: Callable[[float], None] | None = None,
                     is_canceled: Callable[[], bool] | None = None) -> TranslateResult:
    """Translate the part ``region`` of the raster ``plan`` was made for into a GeoTIFF of that part.

    Runs the windows of the whole raster's grid that touch ``region`` (:meth:`~lcgan_qgis.core.run.tiling.Tiling.
    covering`), blended with the whole grid's weights, so the pixels written equal those of :func:`translate` over
    the whole raster (which is this function with ``region = plan.whole``). The output is georeferenced to the part
    and carries the plan's tags and overviews.

    Args:
        model: a loaded model whose contract ``plan`` was made with.
        reader: the whole raster (windows are read in its coordinates).
        plan: from :func:`plan_run` (with its DEM: :meth:`RunPlan.with_elevation`, for terrain-aware models).
        region: pixels to write, inside the raster.
        output_path, confidence_path: the GeoTIFF(s) to write (written under a temporary name, then renamed).
        progress, is_canceled: as for :func:`translate`.

    Raises:
        OptionError: ``region`` is not inside the raster.
        InputRasterError, OutputError, DeviceError: as for :func:`translate`.
    """
    started = time.perf_counter()
    contract, info = model.contract, plan.info
    is_canceled = is_canceled or (lambda: False)
    progress = progress or (lambda _f: None)
    messages = list(plan.messages)
    if plan.whole.intersection(region) != region:
        raise OptionError(f"The region {region} is not inside the {info.width}x{info.height} raster {info.name}.")
    if plan.terrain is not None and plan.input.terrain is None:
        raise InputRasterError(f"The plan of {info.name} reads the elevation {plan.terrain.elevation_path}, which is "
                               "not open here; give the plan its DEM (RunPlan.with_elevation).")
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
    if is_canceled():
        return _canceled(model, started, messages)
    progress(0.0)
    part = _region_info(info, region)
    writers: list[GeoTiffWriter] = []
    try:
        writers.append(open_writer(str(output_path), part, spec.bands, spec.dtype, spec.nodata))
        style_output(writers[0], contract)
        if confidence_path:
            writers.append(open_writer(confidence_path, part, 1, np.dtype(np.float32), CONFIDENCE_NODATA))
            writers[1].band(1).SetDescription("confidence (max class probability)")
        done = run_windows(model, reader, tiling, plan.input, plan.batch_size, region, cells, writers, aoi, progress,
                           is_canceled, to_run)
        if not done:
            for writer in writers:
                writer.abort()
            return _canceled(model, started, messages)
        categorical = (contract.direction is Direction.RGB_TO_LANDCOVER, False)  # (codes, confidence)
        for writer, is_codes in zip(writers, categorical):
            writer.set_tags(dict(plan.options.tags))
            if plan.options.overviews:
                writer.build_overviews(is_codes)
        for writer in writers:
            writer.commit()
    except BaseException:
        for writer in writers:
            writer.abort()
        raise
    seconds = time.perf_counter() - started
    progress(1.0)
    return TranslateResult(
        output_path=str(output_path), confidence_path=confidence_path, canceled=False,
        provider=model.provider, tiles=to_run, seconds=seconds,
        mpx_per_s=region.width * region.height / 1e6 / max(seconds, 1e-9), messages=tuple(messages),
        backend=model.backend, precision=model.precision,
    )


def _region_info(info: RasterInfo, region: Window) -> RasterInfo:
    """``info`` cut to ``region``: its size, and a geotransform whose origin is the region's corner."""
    x0, dx, rx, y0, ry, dy = info.geotransform
    origin = (x0 + region.col_off * dx + region.row_off * rx, dx, rx,
              y0 + region.col_off * ry + region.row_off * dy, ry, dy)
    return replace(info, width=region.width, height=region.height, geotransform=origin)


def _canceled(model: Model, started: float, messages: list[str]) -> TranslateResult:
    return TranslateResult(None, None, True, model.provider, 0, time.perf_counter() - started, 0.0,
                           (*messages, "Cancelled; nothing was written."), model.backend, model.precision)


