"""Evaluate exported models on a paired land-cover / imagery area (default: the Zion sample).

``python -m training evaluate --models DIR --data DIR --out docs/evaluation`` (``make evaluate``). Both ONNX models
run through the plugin's own job (``lcgan_qgis.core.run.job.run_translation``, :mod:`.rasters`), exactly as in
QGIS.

* RGB -> land cover: pixel accuracy, per-class IoU, mIoU and a confusion matrix (PNG) against the real map, next to
  the majority-class baseline (the most frequent real class predicted everywhere).
* Land cover -> RGB: per-class colour statistics (mean and std per band) of the generated and the real imagery, in
  the image's units (the generator's [-1, 1] output mapped back by the model's radiometry; the real imagery clipped
  to the same range, the range the generator can produce), with a baseline that paints every class in the global
  mean colour; and the land-cover agreement when our RGB -> land-cover model reads the generated imagery.

The Zion sample is the area the bundled models were trained on (unpaired, but the same ground): its numbers are a
TRAINING-AREA fit, not a measure of generalisation, and the report says so.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

import numpy as np

from lcgan_qgis.core.errors import InputRasterError, ModelFileError
from lcgan_qgis.core.model.contract import Direction
from lcgan_qgis.core.model.scheme import ClassScheme
from lcgan_qgis.core.resources import bundled_model_path
from lcgan_qgis.core.run.settings import DEFAULT_WINDOW_PX

from ..errors import ConfigError
from .judge import Judge
from .measures import ground_of, headline, measure_generators
from .quick import add_quick_arguments, run_quick
from .rasters import Raster, area_mask, read_raster, shown_path, translate_file, write_image
from .scores import (
    baseline_scores,
    clip_to_radiometry,
    compare_colours,
    generated_to_image_units,
    score_landcover,
    scorer,
    split_scores,
)
from .sections import (
    DEFAULT_TRAIN_AREAS,
    HELDOUT,
    TRAINING,
    Imagery,
    RealismOptions,
    judge_maps,
    realism_sections,
)
from .summary import summary_lines
from .terrain import DEM_FILE, find_terrain_model, terrain_comparison
from .windows import compare_windows, fitted_windows, runnable_sizes

log = logging.getLogger(__name__)

IMAGE_FILE = "landsat8_rgb.tif"
LANDCOVER_FILE = "nlcd2011_on_landsat_grid.tif"
MODEL_FILES = {d: f"{d.value}.onnx" for d in Direction}
TRAINING_AREA_LABEL = (
    "TRAINING-AREA fit: the models were trained on this area (the Zion sample; the bundled ones on its northern "
    "three quarters), so the whole-scene numbers show how well they fit it, not how they generalise. With "
    "--heldout, 'split' also scores the area never trained on separately."
)


# -- the run --------------------------------------------------------------------------------------------------------
def find_models(models_dir: str | Path | None) -> dict[Direction, Path]:
    """Both model files in ``models_dir`` (default: the bundled ones); raises ModelFileError naming what is missing."""
    paths = {d: (Path(models_dir) / MODEL_FILES[d] if models_dir else bundled_model_path(d)) for d in Direction}
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if missing:
        raise ModelFileError(
            f"Model file(s) not found: {', '.join(missing)}. Train and export them (`make train`, then "
            "`python -m training export --out DIR`) or pass MODEL_DIR=<folder with both .onnx files>."
        )
    return paths


def area_sections(image_path: Path, landcover_path: Path, options: RealismOptions, scheme: ClassScheme,
                  masks: dict[str, np.ndarray], real: Raster, real_clipped: np.ndarray, generated: np.ndarray,
                  generated_valid: np.ndarray, true_idx: np.ndarray, rgb_valid: np.ndarray, split: dict,
                  band_names: list[str]) -> tuple[dict, dict, Judge]:
    """The report's ``areas`` (per area: RGB -> LC with its majority baseline and the supervised reference; LC ->
    RGB realism, colour and read-back), ``judge`` (how the judge was trained, or that it came from the cache) and
    the judge itself."""
    from dataclasses import asdict

    from .judge import cached_judge

    judge = cached_judge(image_path, landcover_path, options.train_areas, scheme, options.judge,
                         options.judge_cache_dir)
    images = Imagery.of(real.pixels.astype(np.float32), generated, generated_valid, options.blur_sigma_px)
    maps = judge_maps(judge, images)

    score = scorer(scheme)
    realism = realism_sections(maps, judge.model.size_multiple_px, images, true_idx, masks, scheme, band_names,
                               real_clipped, score, options)
    areas = {}
    for area, mask in masks.items():
        cyclegan = dict(split["rgb_to_landcover"][area])
        cyclegan["supervised_reference"] = score(true_idx, maps["real"][0], rgb_valid & mask)
        colours = compare_colours(real_clipped, generated, true_idx, generated_valid & mask, scheme, band_names)
        areas[area] = {"rgb_to_landcover": cyclegan,
                       "landcover_to_rgb": {**realism[area], "colour_statistics": colours,
                                            "landcover_agreement": split["landcover_agreement"][area]}}
    info = {"what": "U-Net (cross-entropy) trained on real imagery of the training area: the supervised reference "
                    "of RGB -> land cover and the judge of land cover -> RGB (training/evaluation/judge.py)",
            "train_areas": shown_path(options.train_areas), "config": asdict(judge.config),
            "radiometry": judge.radiometry.to_dict(), **judge.info}
    return areas, info, judge


def evaluate(models_dir: str | Path | None, data_dir: str | Path, out_dir: str | Path, device: str = "auto",
             overlap_px: int | None = None, keep_rasters: bool = False, heldout: str | Path | None = None,
             realism: RealismOptions | bool | None = None, precision: str = "auto") -> dict:
    """Evaluate both models on the paired area in ``data_dir``; writes ``evaluation.json`` and PNGs to ``out_dir``.

    Args:
        models_dir: folder with ``landcover_to_rgb.onnx`` and ``rgb_to_landcover.onnx`` (None: the bundled models).
        data_dir: folder with ``landsat8_rgb.tif`` and ``nlcd2011_on_landsat_grid.tif`` (same grid).
        out_dir: where the JSON and PNG files go.
        device: ``auto``, ``cpu`` or ``cuda``.
        overlap_px: tile overlap (None: each model's recommended overlap).
        keep_rasters: also keep the translated GeoTIFFs in ``out_dir/rasters``.
        heldout: optional polygons (GeoJSON/GPKG) of an area the models never saw in training: the land-cover
            scores are then also reported inside it (held-out) and outside it (training area), and, unless
            ``realism`` is ``False``, the per-area sections ``areas`` (supervised reference, judge, two-sample test,
            checkerboard, colour and texture) and ``window_dependence``.
        realism: what the per-area sections run (None or True: :class:`RealismOptions` defaults; False: skip).
        precision: the models' precision as the plugin loads them (``auto``: int8 siblings on CPU when present).

    Returns:
        The report written to ``evaluation.json``.

    Raises:
        ModelFileError, InputRasterError, OutputError: with the file at fault named.
    """
    from lcgan_qgis.core.model.runtime import load_model

    from .plots import plot_colour_swatches, plot_confusion, plot_crops, plot_overview

    paths = find_models(models_dir)
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    image_path, landcover_path = data_dir / IMAGE_FILE, data_dir / LANDCOVER_FILE
    for p in (image_path, landcover_path):
        if not p.is_file():
            raise InputRasterError(f"Paired evaluation data not found: {p} (need {IMAGE_FILE} and {LANDCOVER_FILE}).")
    with load_model(paths[Direction.RGB_TO_LANDCOVER], device="cpu") as m_lc:
        lc_contract = m_lc.contract
    with load_model(paths[Direction.LANDCOVER_TO_RGB], device="cpu") as m_rgb:
        rgb_contract = m_rgb.contract
    scheme = lc_contract.scheme
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    real_lc = read_raster(landcover_path)
    real_img = read_raster(image_path)
    if real_lc.pixels.shape[1:] != real_img.pixels.shape[1:] or real_lc.geotransform != real_img.geotransform:
        raise InputRasterError(
            f"{landcover_path.name} and {image_path.name} must share one grid for a paired evaluation; got "
            f"{real_lc.pixels.shape[1:]} {real_lc.geotransform} and "
            f"{real_img.pixels.shape[1:]} {real_img.geotransform}."
        )
    true_idx, true_valid = scheme.codes_to_indices(real_lc.pixels[0])
    true_valid &= real_lc.valid
    inside = area_mask(heldout, real_img) if heldout else None
    radiometry = rgb_contract.radiometry

    def run(direction: Direction, source: Path, target: Path, window_px: int | None = None) -> dict:
        return translate_file(paths[direction], source, target, device, overlap_px, window_px, precision)

    with tempfile.TemporaryDirectory(prefix="lcgan-evaluate-") as tmp:
        work = out_dir / "rasters" if keep_rasters else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        runs = []
        # RGB -> land cover on the real imagery.
        pred_path = work / "zion_rgb_to_landcover.tif"
        runs.append(run(Direction.RGB_TO_LANDCOVER, image_path, pred_path))
        pred = read_raster(pred_path)
        pred_idx, pred_valid = scheme.codes_to_indices(pred.pixels[0])
        valid = true_valid & pred_valid & pred.valid & real_img.valid
        rgb2lc = score_landcover(true_idx, pred_idx, valid, scheme)
        rgb2lc["baseline_majority"] = baseline_scores(rgb2lc, scheme)
        # Land cover -> RGB on the real map, then RGB -> land cover on what was generated.
        gen_path = work / "zion_landcover_to_rgb.tif"
        runs.append(run(Direction.LANDCOVER_TO_RGB, landcover_path, gen_path))
        gen = read_raster(gen_path)
        gen_units = generated_to_image_units(gen.pixels[: rgb_contract.image_bands], radiometry)
        gen_valid = true_valid & gen.valid & real_img.valid
        real_clipped = clip_to_radiometry(real_img.pixels, radiometry)
        colours = compare_colours(real_clipped, gen_units, true_idx, gen_valid, scheme, rgb_contract.band_names)
        gen_units_path = work / "zion_landcover_to_rgb_image_units.tif"
        dn = np.where(gen.valid, np.clip(np.rint(gen_units), 1, 65535), 0).astype(np.uint16)
        write_image(gen_units_path, dn, real_img)
        back_path = work / "zion_generated_rgb_to_landcover.tif"
        runs.append(run(Direction.RGB_TO_LANDCOVER, gen_units_path, back_path))
        back = read_raster(back_path)
        back_idx, back_valid = scheme.codes_to_indices(back.pixels[0])
        agree_valid = gen_valid & back_valid & back.valid
        agreement = score_landcover(true_idx, back_idx, agree_valid, scheme)
        agreement["baseline_majority"] = baseline_scores(agreement, scheme)
        split = areas = window = judge_info = terrain = measures = None
        if inside is not None:
            split = {"areas": str(heldout), "rgb_to_landcover": split_scores(true_idx, pred_idx, valid, inside, scheme),
                     "landcover_agreement": split_scores(true_idx, back_idx, agree_valid, inside, scheme)}
        if inside is not None and realism is not False:
            options = realism if isinstance(realism, RealismOptions) else RealismOptions()
            masks = {HELDOUT: inside, TRAINING: ~inside}
            areas, judge_info, judge = area_sections(image_path, landcover_path, options, scheme, masks, real_img,
                                              real_clipped, gen_units, gen_valid, true_idx, valid, split,
                                              list(rgb_contract.band_names))
            # The engine needs a window wider than twice the overlap: smaller sizes are skipped, and named.
            least = max(c.overlap_px if overlap_px is None else overlap_px for c in (lc_contract, rgb_contract))
            sizes, skipped = runnable_sizes(options.window_sizes_px, least)
            window = {"sizes_px": sizes, "windows_px": {}, "runs": [], "skipped_px": skipped}
            outputs: dict[Direction, dict[int, tuple[np.ndarray, np.ndarray]]] = {}
            for direction, source, default_path, contract in (
                (Direction.RGB_TO_LANDCOVER, image_path, pred_path, lc_contract),
                (Direction.LANDCOVER_TO_RGB, landcover_path, gen_path, rgb_contract),
            ):
                outputs[direction] = {}
                window["windows_px"][direction.value] = {}
                for size in sizes:
                    target = default_path  # the runs above used the engine's default window
                    if size != DEFAULT_WINDOW_PX:
                        target = work / f"window_{size}_{direction.value}.tif"
                        window["runs"].append({**run(direction, source, target, size), "window_px": size})
                    raster = read_raster(target)
                    outputs[direction][size] = (raster.pixels, raster.valid)
                    window["windows_px"][direction.value][str(size)] = fitted_windows(
                        contract, *raster.valid.shape, size, overlap_px)
            window.update(compare_windows(outputs[Direction.RGB_TO_LANDCOVER], outputs[Direction.LANDCOVER_TO_RGB],
                                          true_idx, true_valid, masks, scheme))
            terrain_model = find_terrain_model(models_dir)
            more: list[tuple[str, np.ndarray]] = []
            if terrain_model is not None:
                terrain, terrain_pixels = terrain_comparison(
                    terrain_model, data_dir, landcover_path, work, real_img, real_clipped, true_idx, true_valid,
                    masks, scheme, list(rgb_contract.band_names), areas, judge, options, scorer(scheme), device,
                    precision, compare_colours)
                if terrain is not None:
                    more = [("generated: terrain-aware", terrain_pixels)]
            generators = {"map_only": (paths[Direction.LANDCOVER_TO_RGB], None, gen_units)}
            if more:
                generators["terrain_aware"] = (terrain_model, data_dir / DEM_FILE,
                                               generated_to_image_units(more[0][1], radiometry))
            ground = ground_of(real_img, real_clipped, inside, gen_valid, data_dir / DEM_FILE)
            measures = measure_generators(generators, ground, landcover_path, real_img, radiometry,
                                          paths[Direction.RGB_TO_LANDCOVER], work, two_sample=None, device=device,
                                          frechet_patch_px=options.feature_cell_px)
            plot_crops(real_lc.pixels[0], true_valid, real_img.pixels, gen.pixels[:3], inside, scheme, radiometry,
                       out_dir / "crops_heldout.png", more=more)

        title = "training area" if inside is None else "whole scene: training area + held-out area"
        plot_confusion(np.array(rgb2lc["confusion_matrix"]), scheme, out_dir / "confusion_rgb_to_landcover.png",
                       f"RGB -> land cover on real Landsat 8 (Zion, {title})")
        plot_confusion(np.array(agreement["confusion_matrix"]), scheme, out_dir / "confusion_agreement.png",
                       f"RGB -> land cover on generated imagery vs the input map (Zion, {title})")
        plot_colour_swatches(colours, scheme, radiometry, out_dir / "colour_statistics.png")
        plot_overview(real_lc.pixels[0], true_valid, real_img.pixels, gen.pixels[:3], pred.pixels[0], scheme,
                      radiometry, out_dir / "overview.png")

    report = {
        "label": TRAINING_AREA_LABEL,
        "data": {"image": image_path.name, "landcover": landcover_path.name,
                 "width": int(real_img.pixels.shape[2]), "height": int(real_img.pixels.shape[1]),
                 "valid_pixels": int(valid.sum())},
        "models": {d.value: {"file": paths[d].name, "model_version": c.model_version,
                             "config_digest": c.config_digest, "tile_size_px": c.tile_size_px,
                             "overlap_px": c.overlap_px if overlap_px is None else overlap_px}
                   for d, c in ((Direction.RGB_TO_LANDCOVER, lc_contract), (Direction.LANDCOVER_TO_RGB, rgb_contract))},
        "rgb_to_landcover": rgb2lc,
        "landcover_to_rgb": {
            "units": "image units (Landsat DN) after the model's radiometry; real imagery clipped to its range",
            "colour_statistics": colours,
            "landcover_agreement": agreement,
        },
        "runs": runs,
    }
    if split is not None:
        report["split"] = split
    if areas is not None:
        report["areas"] = areas
        report["judge"] = judge_info
        report["window_dependence"] = window
    if terrain is not None:
        report["terrain_comparison"] = terrain
    if measures is not None:
        report["realism"] = {"headline": headline(measures), **measures,
                             "two_sample": "in areas.heldout.landcover_to_rgb.two_sample (held-out patches)"}
    report["seconds"] = round(time.perf_counter() - started, 1)
    report["pngs"] = sorted(p.name for p in out_dir.glob("*.png"))
    path = out_dir / "evaluation.json"
    tmp_json = path.with_suffix(".json.tmp")
    tmp_json.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    tmp_json.replace(path)
    return report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``evaluate`` sub-command's options."""
    parser.add_argument("--models", type=Path, default=None, help="folder with both .onnx files (default: bundled)")
    parser.add_argument("--data", type=Path, required=True, help=f"folder with {IMAGE_FILE} and {LANDCOVER_FILE}")
    parser.add_argument("--out", type=Path, default=Path("docs/evaluation"), help="output folder (JSON + PNG)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="execution device")
    parser.add_argument("--overlap-px", type=int, default=None, help="tile overlap (default: the model's)")
    parser.add_argument("--keep-rasters", action="store_true", help="keep the translated GeoTIFFs in OUT/rasters")
    parser.add_argument("--heldout", type=Path, default=None,
                        help="polygons (GeoJSON/GPKG) of an area never trained on: also score inside/outside it, "
                             "with the supervised reference, the judge and the realism measures per area")
    parser.add_argument("--train-areas", type=Path, default=DEFAULT_TRAIN_AREAS,
                        help="polygons the judge / supervised reference trains in (default: the bundled models')")
    parser.add_argument("--judge-cache", type=Path, default=None,
                        help="folder of cached judges (default: ~/.cache/lcgan/judge)")
    parser.add_argument("--no-realism", action="store_true",
                        help="skip the judge, two-sample test and window-size runs (minutes) even with --heldout")
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "int8"),
                        help="model precision (auto: the int8 siblings on CPU when present, as the plugin does)")
    add_quick_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Run the ``evaluate`` sub-command; prints the summary and where the files are."""
    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise ConfigError(f"--out {args.out} is a file; give a folder for evaluation.json and its pictures.")
    if args.quick:
        return run_quick(args)
    realism = False if args.no_realism else RealismOptions(train_areas=args.train_areas,
                                                          judge_cache_dir=args.judge_cache)
    report = evaluate(args.models, args.data, args.out, args.device, args.overlap_px, args.keep_rasters,
                      args.heldout, realism, args.precision)
    for line in summary_lines(report):
        print(line)
    print(f"wrote {Path(args.out) / 'evaluation.json'} and {', '.join(report['pngs'])}")
    return 0
