"""Land-cover scenarios as imagery: re-render only what a change can reach, copy the rest from the base render.

A planner's scenario is the base land cover plus a change (a changed raster, or polygons turning to a class). Its
imagery (:func:`run_scenario`):

1. the change mask: pixels whose class differs (:func:`~.change.change_mask`), and its area in hectares;
2. the re-rendering, in one of two modes (``ScenarioRequest.mode``):
   * ``local`` (the default, :mod:`.scenario_local`): each cluster of changes plus a user-set margin (32 px by
     default) is rendered as one crop in the windows' phase, and feathered into the base render;
   * ``exact``: the margin is the model's receptive field, measured (:func:`~.receptive_field.receptive_field_px`),
     and :func:`~.engine.translate_region` runs every window of the full grid that touches it (the margin is the
     engine's area of interest), so the result equals a full render of the changed map (tests check it bit for bit);
   in both, every pixel farther than the margin from a change is copied from the base render, bit for bit;
3. the base render: the user's (``base_render_path``: rendered from the same map with the same model, settings and
   seed, e.g. ``python -m lcgan_qgis translate --seed N``; checked to be on the base's grid with 3 bands), or
   rendered here once, whole, and written as an output too;
4. outputs: the scenario imagery, the change mask (1 changed, 2 re-rendered margin, 0 copied) and, when rendered
   here, the base render, moved into place together (:func:`~lcgan_qgis.core.storage.files.commit_all`), with
   provenance tags naming the base, the change, the base render, the model, the mode and the margin.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..errors import ContractError, InputRasterError, OptionError, OutputError
from ..model.contract import Direction, ModelContract
from ..model.runtime import Model
from ..rasters.gdal_io import GdalReader
from ..rasters.provenance import ELEVATION, provenance_tags
from ..rasters.raster import Window
from ..rasters.resampling import plan_resolution
from ..rasters.sources import check_output_paths
from ..storage.files import (
    SIDECAR_SUFFIX,
    AtomicFile,
    commit_all,
    output_folder,
    same_file,
    scratch_folder,
    stale_partial_messages,
)
from .change import (
    PolygonChange,
    area_hectares,
    bounding_window,
    change_mask,
    check_same_grid,
    dilate,
    grow_note,
    margin_note,
    mask_wkt,
)
from .claims import claim_outputs
from .engine import TranslateOptions, plan_run, translate, translate_region
from .models import resolve_model_path
from .plan import elevation_on
from .receptive_field import receptive_field_px
from .scenario_local import (
    DEFAULT_MARGIN_PX,
    change_regions,
    check_margin,
    check_mode,
    local_parts,
    render_local,
    ring,
    ring_note,
)
from .scenario_output import (
    base_render_notes,
    check_base_render,
    composite,
    patch_composite,
    scenario_tags,
    write_change_mask,
)
from .settings import RunSettings

LOG = logging.getLogger(__name__)
BASE_SHARE = 0.6  # of the progress bar, when the base is rendered here


@dataclass(frozen=True)
class ScenarioRequest:
    """One scenario: the base land cover, the change, the model and where the results go.

    Attributes:
        output_path: the scenario imagery (GeoTIFF).
        base_path: the base land cover (a GDAL raster file).
        changed_path: the changed land cover, on the base's grid; or else
        polygons_path: polygons (any OGR vector file) burnt into the base with ``to_class`` (one code) or
            ``class_field`` (each polygon's code), changing only ``from_classes`` (empty: every class).
        base_render_path: imagery already rendered from the base (same model, settings and seed); ``None``: render
            it here (the whole raster once) into ``base_render_output``.
        base_render_output: where a base rendered here goes (``None``: ``<output stem>_base.tif``).
        change_mask_path: the change mask (``None``: ``<output stem>_change.tif``).
        model_path: a land cover -> RGB model (``None``: the bundled one).
        settings: execution, windows, terrain (the DEM of a terrain-aware model), resolution and the seed, as for a
            translation (:class:`~lcgan_qgis.core.run.settings.RunSettings`; its ``aoi_wkt`` is not used).
        name: the scenario's name (tags, the layer group in QGIS; ``None``: the output's stem).
        overwrite: ``False`` refuses existing outputs.
        mode: ``"local"`` (re-render the changed neighbourhood, feathered into the base render within
            ``margin_px``: :mod:`.scenario_local`) or ``"exact"`` (equal to a full render of the changed map).
        margin_px: the local mode's margin (0..256 px; ``None``: :data:`~.scenario_local.DEFAULT_MARGIN_PX`); the
            exact mode measures its own (the model's receptive field) and takes none.

    Raises:
        OptionError: an unknown mode, a margin out of range or given to the exact mode.
    """

    output_path: str
    base_path: str
    changed_path: str | None = None
    polygons_path: str | None = None
    to_class: int | None = None
    class_field: str | None = None
    from_classes: tuple[int, ...] = ()
    base_render_path: str | None = None
    base_render_output: str | None = None
    change_mask_path: str | None = None
    model_path: str | None = None
    settings: RunSettings = field(default_factory=RunSettings)
    name: str | None = None
    overwrite: bool = True
    mode: str = "local"
    margin_px: int | None = None

    def __post_init__(self) -> None:
        check_mode(self.mode)
        if self.margin_px is not None:
            if self.mode == "exact":
                raise OptionError("The exact mode's margin is the model's measured receptive field; give a margin "
                                  "only to the local mode.")
            check_margin(self.margin_px)

    @property
    def margin(self) -> int | None:
        """The local mode's margin (px); ``None`` in the exact mode (measured on the model)."""
        if self.mode == "exact":
            return None
        return DEFAULT_MARGIN_PX if self.margin_px is None else self.margin_px

    @property
    def scenario_name(self) -> str:
        return self.name or Path(self.output_path).stem

    @property
    def mask_path(self) -> str:
        return self.change_mask_path or str(_beside(self.output_path, "_change"))

    @property
    def base_output(self) -> str | None:
        """The base render written by this run (``None`` when one is given)."""
        if self.base_render_path:
            return None
        return self.base_render_output or str(_beside(self.output_path, "_base"))

    def change_label(self) -> str:
        """How the provenance names the change."""
        if self.changed_path:
            return Path(self.changed_path).name
        target = f"class {self.to_class}" if self.class_field is None else f"the classes in '{self.class_field}'"
        only = f" (only {', '.join(map(str, self.from_classes))})" if self.from_classes else ""
        return f"{Path(str(self.polygons_path)).name} -> {target}{only}"


@dataclass(frozen=True)
class ScenarioResult:
    """What a scenario run did (``canceled``: nothing was written)."""

    output_path: str | None
    change_mask_path: str | None
    base_render_path: str | None
    base_rendered: bool
    changed_px: int
    changed_ha: float | None
    margin_px: int
    margin_capped: bool
    rerendered_px: int
    runs: int  # model runs: crops (local mode) or windows (exact mode)
    windows_total: int
    seconds: float
    contract: ModelContract | None = None
    tags: dict[str, str] = field(default_factory=dict)
    messages: tuple[str, ...] = ()
    canceled: bool = False
    render_seconds: float = 0.0  # of ``seconds``: the engine re-rendering the windows that touch the margin
    mode: str = "exact"

    @property
    def model_runs(self) -> str:
        """What the model ran, for a message: ``"1 crop (the full render: 9 windows)"``, ``"4 of 9 windows"``."""
        if self.mode == "local":
            return (f"{self.runs} crop{'s' if self.runs != 1 else ''} (the full render: "
                    f"{self.windows_total} windows)")
        return f"{self.runs} of {self.windows_total} windows"


def _beside(path: str, suffix: str) -> Path:
    p = Path(path)
    return p.with_name(f"{p.stem}{suffix}{p.suffix or '.tif'}")


def check_request(request: ScenarioRequest) -> None:
    """The request's own rules, before any file is opened.

    Raises:
        OptionError: no change or two kinds of change; polygons without a class.
        OutputError: an output that cannot be written, or replaces an input or another output.
    """
    if bool(request.changed_path) == bool(request.polygons_path):
        raise OptionError("Give the change either as a changed land-cover raster or as polygons with a class, "
                          "not both or neither.")
    if request.polygons_path and (request.to_class is None) == (request.class_field is None):
        raise OptionError("Change polygons need their new class: one code (to_class) or a field holding each "
                          "polygon's code (class_field).")
    inputs = [p for p in (request.base_path, request.changed_path, request.base_render_path,
                          request.settings.terrain.elevation_path) if p]
    outputs = [p for p in (request.output_path, request.mask_path, request.base_output) if p]
    for out in outputs:
        for source in inputs:
            check_output_paths(out, None, source, request.overwrite)
    for i, a in enumerate(outputs):
        for b in outputs[i + 1:]:
            if same_file(a, b) or Path(a).resolve() == Path(b).resolve():
                raise OutputError(f"Two of the scenario's outputs are the same file ({a}); give each its own name.")


def run_scenario(request: ScenarioRequest, progress: Callable[[float], None] | None = None,
                 is_canceled: Callable[[], bool] | None = None, log: Callable[[str], None] | None = None,
                 model: Model | None = None) -> ScenarioResult:
    """Render ``request``'s scenario (see the module's docstring).

    Args:
        request: the scenario.
        progress: called with the fraction done (0..1).
        is_canceled: polled between windows; when it turns true the run stops and writes nothing.
        log: receives one-line messages for the user.
        model: a loaded model to use (kept open; ``request.model_path`` and the execution settings are then unused).

    Raises:
        LcganError: the core's one-line message (input, grid, class, polygons, output, model).
    """
    check_request(request)
    outputs = [request.output_path, request.mask_path, request.base_output]
    with claim_outputs(outputs):
        if model is not None:
            return _run(request, model, Path(request.model_path or model.path), progress, is_canceled,
                        log or LOG.info)
        path = resolve_model_path(request.model_path, Direction.LANDCOVER_TO_RGB)
        with contextlib.closing(request.settings.execution.load(path)) as loaded:
            return _run(request, loaded, path, progress, is_canceled, log or LOG.info)


@contextlib.contextmanager
def _changed_reader(request: ScenarioRequest, base: GdalReader, contract: ModelContract,
                    say: Callable[[str], None]) -> Iterator[tuple[GdalReader, Window | None]]:
    """The changed map as a reader on the base's grid (a file, or the base with the polygons burnt in), with the
    window outside which it equals the base (``None``: anywhere)."""
    if request.changed_path:
        with GdalReader(request.changed_path) as changed:
            check_same_grid(base.info, changed.info, "changed land cover")
            yield changed, None
        return
    with PolygonChange(base, str(request.polygons_path), request.to_class, request.class_field,
                       request.from_classes, contract.scheme) as burnt:
        for message in burnt.messages:
            say(message)
        with GdalReader(burnt.path) as changed:
            yield changed, burnt.window


def _run(request: ScenarioRequest, model: Model, model_path: Path, progress: Callable[[float], None] | None,
         is_canceled: Callable[[], bool] | None, say: Callable[[str], None]) -> ScenarioResult:
    started = time.perf_counter()
    report = progress or (lambda _f: None)
    canceled = is_canceled or (lambda: False)
    contract = model.contract
    if contract.direction is not Direction.LANDCOVER_TO_RGB:
        raise ContractError(f"Model {model.path} translates {contract.direction.value}; a scenario needs a land cover "
                            "-> RGB model.")
    settings = request.settings
    messages = stale_partial_messages([p for p in (request.output_path, request.mask_path, request.base_output) if p])
    with GdalReader(request.base_path) as base, _changed_reader(request, base, contract, say) as (changed, within):
        info = base.info
        resolution = plan_resolution(info, base.metres_per_unit, contract.gsd_m,
                                     settings.resolution.gsd_tolerance, settings.resolution.check_gsd)
        if resolution.grid is not None:
            raise InputRasterError(
                f"{info.name}: its pixel size differs from the model's {contract.gsd_m:g} m by more than "
                f"{settings.resolution.gsd_tolerance:.0%}; a scenario is rendered on the map's own grid, so resample "
                f"the map first (gdalwarp -tr {contract.gsd_m:g} {contract.gsd_m:g} -r near) or switch the resolution "
                "check off.")
        given = None
        if request.base_render_path:
            given = check_base_render(request.base_render_path, info)
            for note in base_render_notes(given, model_path, info.name, settings.rendering.seed):
                say(note)
                messages.append(note)
        mask = change_mask(base, changed, contract.scheme, canceled, within)
        changed_px = int(mask.sum())
        if changed_px == 0:
            raise OptionError(f"The changed land cover equals {info.name} everywhere; there is no change to render.")
        local = request.mode == "local"
        margin_px, capped = (int(request.margin or 0), False) if local else receptive_field_px(model)
        parts = local_parts(change_regions(mask, margin_px)) if local else []
        grown, weights = ring(mask, [p for p, _c in parts], margin_px) if local else (dilate(mask, margin_px), [])
        hectares = area_hectares(mask, info)
        say(ring_note(margin_px) if local else margin_note(margin_px, capped))
        say(grow_note(mask, grown) + (f" Changed area: {hectares:,.2f} ha." if hectares is not None else ""))
        elevation_path = settings.terrain.elevation_path if contract.terrain is not None else None
        base_label = Path(request.base_path).name
        tags = scenario_tags(
            provenance_tags(contract, model_path, f"{base_label} changed by {request.change_label()}",
                            elevation_name=Path(elevation_path).name if elevation_path else None),
            request.scenario_name, base_label, request.change_label(),
            Path(request.base_render_path).name if request.base_render_path else Path(str(request.base_output)).name,
            settings.rendering.seed, margin_px, changed_px, hectares, request.mode)
        report(0.02)
        with elevation_on(elevation_path, info) as elevation, \
                scratch_folder(output_folder(Path(request.output_path))) as scratch:
            base_render = request.base_render_path
            share = 0.0
            if given is None:
                say(f"No base render given: rendering the whole base {base_label} once (also written to "
                    f"{request.base_output}).")
                base_render = str(scratch / "base.tif")
                base_tags = provenance_tags(contract, model_path, base_label, elevation_name=tags.get(ELEVATION),
                                            seed=settings.rendering.seed)
                done = translate(model, base, base_render, _options(settings, base_tags),
                                 lambda f: report(0.02 + BASE_SHARE * f), canceled, elevation)
                if done.canceled:
                    return _canceled(request, started, margin_px, capped, messages)
                share = BASE_SHARE
            plan = plan_run(contract, changed, _options(settings, {}, None if local else mask_wkt(grown, info)),
                            canceled, elevation)
            for note in plan.messages:
                say(note)
            step = lambda f: report(0.02 + share + (0.93 - share) * f)  # noqa: E731
            finals = [(scratch / "scenario.tif", request.output_path), (scratch / "change.tif", request.mask_path)]
            if local:
                render_started = time.perf_counter()
                rendered = render_local(model, changed, plan, parts, step, canceled)
                if rendered is None or canceled():
                    return _canceled(request, started, margin_px, capped, messages)
                render_seconds = time.perf_counter() - render_started
                patch_composite(str(base_render), [(r.region, r.pixels, w) for r, w in zip(rendered, weights)],
                                finals[0][0], info, contract, tags)
                runs = sum(r.crops for r in rendered)
            else:
                region = bounding_window(grown)
                part = scratch / "region.tif"
                result = translate_region(model, changed, plan, region, part, None, step, canceled)
                if result.canceled or canceled():
                    return _canceled(request, started, margin_px, capped, messages)
                composite(str(base_render), str(part), grown, region, finals[0][0], info, contract, tags)
                render_seconds, runs = result.seconds, result.tiles
            write_change_mask(mask, grown, finals[1][0], info, tags)
            if given is None:
                finals.append((Path(base_render), str(request.base_output)))
            _move_into_place(finals)
        report(1.0)
        seconds = time.perf_counter() - started
        outcome = ScenarioResult(
            request.output_path, request.mask_path, request.base_render_path or request.base_output, given is None,
            changed_px, hectares, margin_px, capped, int(grown.sum()), runs, plan.tiling().count, seconds,
            contract, tags, tuple(messages) + plan.messages, render_seconds=render_seconds, mode=request.mode)
        say(f"Scenario '{request.scenario_name}' ({request.mode} mode): {outcome.model_runs} re-rendered in "
            f"{seconds:.1f} s -> {request.output_path}.")
        return outcome


def _options(settings: RunSettings, tags: dict[str, str], aoi_wkt: str | None = None) -> TranslateOptions:
    """The engine's options of both renders (the base's and the changed region's): one window grid, one seed; the
    region's area of interest is the margin, and its overviews are the composite's."""
    return TranslateOptions(settings=replace(settings, aoi_wkt=aoi_wkt), tags=tuple(tags.items()),
                            overviews=aoi_wkt is None)


def _move_into_place(finals: list[tuple[Path, str]]) -> None:
    """Move the finished files (written and closed in the locked scratch folder) onto their outputs, all or none."""
    targets = [AtomicFile(path, sidecars=(SIDECAR_SUFFIX,)) for _src, path in finals]
    try:
        for i, (source, _path) in enumerate(finals):
            target = targets[i]
            for suffix in ("", SIDECAR_SUFFIX):
                if Path(f"{source}{suffix}").exists():
                    Path(f"{source}{suffix}").replace(f"{target.temp_path}{suffix}")
        commit_all(targets)
    finally:
        for target in targets:
            target.abort()


def _canceled(request: ScenarioRequest, started: float, margin_px: int, capped: bool,
              messages: list[str]) -> ScenarioResult:
    return ScenarioResult(None, None, None, False, 0, None, margin_px, capped, 0, 0, 0,
                          time.perf_counter() - started, messages=(*messages, "Cancelled; nothing was written."),
                          canceled=True)
