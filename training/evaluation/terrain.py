"""``make evaluate``'s comparison of the map-only and the terrain-aware land cover -> RGB generators (issue 15).

When the models folder (or the bundled resources) holds a terrain-aware generator (``landcover_to_rgb_terrain.onnx``,
``contract.terrain`` set) and the data folder holds the DEM on the evaluation grid (``srtm_on_landsat_grid.tif``),
the terrain-aware generator paints the same map through the plugin's job with the DEM, and the same realism measures
as the map-only generator's (:func:`.sections.realism_sections`: judge Frechet distance with its
references, judge scores, two-sample test with its blurred control, checkerboard index, texture, colour) are
computed for it; ``terrain_comparison`` in ``evaluation.json`` puts both side by side, area by area.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np

from lcgan_qgis.core.model.contract import Direction
from lcgan_qgis.core.model.runtime import load_model
from lcgan_qgis.core.model.scheme import ClassScheme
from lcgan_qgis.core.resources import bundled_terrain_model_path

from .judge import Judge
from .rasters import Raster, read_raster, translate_file
from .sections import Imagery, RealismOptions, judge_maps, realism_sections

log = logging.getLogger(__name__)

DEM_FILE = "srtm_on_landsat_grid.tif"
TERRAIN_MODEL_FILE = f"{Direction.LANDCOVER_TO_RGB.value}_terrain.onnx"
#: The measures quoted side by side (section, key) for each area.
COMPARED = (("judge_frechet", "generated_vs_real"), ("judge_frechet", "generated_over_real_vs_real"),
            ("judge_scores", "generated"), ("two_sample", "accuracy"), ("checkerboard", "index"),
            ("texture", "local_std_ratio"), ("texture", "gradient_ratio"))


def find_terrain_model(models_dir: str | Path | None) -> Path | None:
    """The terrain-aware generator next to the evaluated models (or bundled), or None when there is none."""
    path = Path(models_dir) / TERRAIN_MODEL_FILE if models_dir else bundled_terrain_model_path()
    return path if path.is_file() else None


def _picked(section: dict) -> dict:
    return {f"{name}.{key}": section.get(name, {}).get(key) for name, key in COMPARED}


def terrain_comparison(model_path: Path, data_dir: Path, landcover_path: Path, work: Path, real: Raster,
                       real_clipped: np.ndarray, true_idx: np.ndarray, true_valid: np.ndarray,
                       masks: dict[str, np.ndarray], scheme: ClassScheme, band_names: list[str],
                       map_only_areas: dict[str, dict], judge: Judge, options: RealismOptions,
                       score: Callable[[np.ndarray, np.ndarray, np.ndarray], dict], device: str = "auto",
                       precision: str = "auto", colours: Callable[..., dict] | None = None
                       ) -> tuple[dict, np.ndarray] | tuple[None, None]:
    """The terrain-aware generator's realism sections beside the map-only generator's.

    Returns ``(report, generated uint8 image)``, or ``(None, None)`` when the DEM is missing (logged).
    """
    dem = data_dir / DEM_FILE
    if not dem.is_file():
        log.warning("terrain comparison skipped: %s not found (the terrain-aware model needs elevation)", dem)
        return None, None
    with load_model(model_path, device="cpu") as model:
        contract = model.contract
    out_path = work / "zion_landcover_to_rgb_terrain.tif"
    run = translate_file(model_path, landcover_path, out_path, device, None, None, precision, elevation_path=dem)
    generated = read_raster(out_path)
    units = contract.radiometry.denormalize(generated.pixels[: contract.image_bands].astype(np.float32) / 127.5 - 1)
    valid = true_valid & generated.valid & real.valid
    images = Imagery.of(real.pixels.astype(np.float32), units, valid, options.blur_sigma_px)
    scale = judge.model.size_multiple_px
    sections = realism_sections(judge_maps(judge, images), scale, images, true_idx, masks, scheme, band_names,
                                real_clipped, score, options)
    per_area = {}
    for area, mask in masks.items():
        terrain = sections[area]
        if colours is not None:
            terrain["colour_statistics"] = colours(real_clipped, units, true_idx, valid & mask, scheme, band_names)
        per_area[area] = {
            "map_only": _picked(map_only_areas[area]["landcover_to_rgb"]),
            "terrain_aware": _picked(terrain),
            "terrain_aware_sections": terrain,
        }
    report = {"model": model_path.name, "elevation": dem.name, "terrain": contract.to_dict().get("terrain"),
              "run": run, "areas": per_area,
              "note": "same map, same judge, same cells; the terrain-aware generator also reads hillshade, slope and "
                      "relative elevation derived from the DEM (lcgan_qgis/core/terrain/channels.py)"}
    return report, generated.pixels[:3]
