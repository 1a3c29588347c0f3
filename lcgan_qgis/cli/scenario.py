"""``scenario``: a land-cover change as imagery (:func:`lcgan_qgis.core.run.scenario.run_scenario`).

Examples::

    python -m lcgan_qgis translate --model landcover_to_rgb.onnx --input nlcd.tif --output before.tif --seed 7
    python -m lcgan_qgis scenario --model landcover_to_rgb.onnx --base nlcd.tif --changed nlcd_2040.tif \
        --base-render before.tif --output after.tif --seed 7
    python -m lcgan_qgis scenario --base nlcd.tif --polygons suburb.gpkg --to-class 22 --from-class 41,42,43 \
        --output after.tif --seed 7
"""

from __future__ import annotations

import argparse
import sys

from .common import add_rendering_options, add_window_options, canceled_exit, run_settings, run_stoppable, say

NAME = "scenario"


def _codes(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(c) for c in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"class codes must be comma-separated integers like 41,42,43, got "
                                         f"{text!r}") from None


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(NAME, help="render a land-cover change as imagery: only what the change can reach is "
                                       "re-rendered, the rest is the base render bit for bit (docs/scenarios.md)",
                            description="A given --base-render must come from the same model, --window, --overlap "
                                        "and --seed (translate --seed N).")
    parser.add_argument("--model", default=None, help="land cover -> RGB .onnx model (default: the bundled one)")
    parser.add_argument("--base", required=True, help="the base land cover (any GDAL raster)")
    change = parser.add_mutually_exclusive_group(required=True)
    change.add_argument("--changed", default=None, help="the changed land cover, on the base's grid")
    change.add_argument("--polygons", default=None, help="polygons (any OGR vector file) burnt into the base")
    parser.add_argument("--to-class", type=int, default=None, help="the code the polygons turn their pixels to")
    parser.add_argument("--class-field", default=None, help="or: the polygons' field holding each one's new code")
    parser.add_argument("--from-class", type=_codes, default=(), metavar="CODES",
                        help="only pixels of these codes change under the polygons, e.g. 41,42,43 (default: all)")
    parser.add_argument("--base-render", default=None,
                        help="imagery rendered from the base with the same model, window and seed (translate "
                             "--seed N); default: the whole base is rendered once, into --base-render-output")
    parser.add_argument("--base-render-output", default=None,
                        help="where a base rendered here goes (default: OUTPUT_base.tif)")
    parser.add_argument("--output", required=True, help="the scenario imagery (GeoTIFF)")
    parser.add_argument("--change-mask", default=None,
                        help="the change mask: 1 changed, 2 re-rendered margin, 0 copied (default: OUTPUT_change.tif)")
    parser.add_argument("--name", default=None, help="the scenario's name (tags; default: the output's name)")
    parser.add_argument("--mode", choices=("local", "exact"), default="local",
                        help="local (default): re-render the changed neighbourhood and feather it into the base "
                             "render within --margin px; exact: re-render every window the change can reach, equal "
                             "to a full render of the changed map (slower)")
    parser.add_argument("--margin", type=int, default=None, metavar="PX",
                        help="local mode: pixels farther than this from a change are the base render's, bit for bit "
                             "(0-256; default 32)")
    add_rendering_options(parser)
    add_window_options(parser)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: all cores)")
    parser.add_argument("--no-gsd-check", action="store_true",
                        help="render at the map's own pixel size even when it is more than 10 %% off the model's")
    parser.add_argument("--no-overwrite", action="store_true", help="refuse to replace existing outputs")
    parser.set_defaults(bands=None, radiometry=None, aoi=None)  # (run_settings' imagery options: a map has none)


def run(args: argparse.Namespace) -> int:
    from ..core.run.scenario import ScenarioRequest, run_scenario

    settings = run_settings(args)
    request = ScenarioRequest(
        output_path=args.output, base_path=args.base, changed_path=args.changed, polygons_path=args.polygons,
        to_class=args.to_class, class_field=args.class_field, from_classes=tuple(args.from_class),
        base_render_path=args.base_render, base_render_output=args.base_render_output,
        change_mask_path=args.change_mask, model_path=args.model, settings=settings, name=args.name,
        overwrite=not args.no_overwrite, mode=args.mode, margin_px=args.margin)
    result, stop_signal = run_stoppable(lambda update, is_canceled: run_scenario(request, update, is_canceled, say))
    if result.canceled:
        code, name = canceled_exit(stop_signal)
        print(f"cancelled: nothing was written ({name})", file=sys.stderr)
        return code
    area = "" if result.changed_ha is None else f", {result.changed_ha:,.2f} ha"
    print(f"{result.output_path}: {result.changed_px:,} px changed{area}; {result.mode} mode, margin "
          f"{result.margin_px} px; {result.model_runs} in {result.seconds:.1f} s; "
          "change mask "
          f"{result.change_mask_path}; base render {result.base_render_path}"
          f"{' (rendered here)' if result.base_rendered else ''}")
    return 0
