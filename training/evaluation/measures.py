"""The realism measures of issue 22 on arrays already in memory: one call for ``make evaluate`` and for training.

Per generated image of the held-out area: the periodic-texture peak index (:mod:`.periodic`), the relief correlation
(:mod:`.relief`, when a DEM is given), the classifier two-sample test (:mod:`.two_sample`: trained in the training
area, scored on every non-overlapping patch of the held-out area); across them, the texture Frechet distance with its
two references (:mod:`.frechet`). Seed diversity and the crops need model runs: :mod:`.seeds`, :mod:`.crops`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lcgan_qgis.core.model.contract import Radiometry

from .frechet import FEATURE_PATCH_PX, frechet_references
from .periodic import peak_index
from .rasters import Raster, read_raster
from .realism import percentile_stretch
from .relief import relief_correlation
from .seeds import render_seeds, seed_diversity
from .two_sample import TwoSampleConfig, two_sample_test

log = logging.getLogger(__name__)

#: The two-sample budget of the quick measures: one seed, at most 600 steps (``make evaluate``'s: two, 3,000).
QUICK_TWO_SAMPLE = TwoSampleConfig(max_steps=600, seeds=(0,))


@dataclass(frozen=True)
class Ground:
    """The real side of every measure, on one grid: imagery, areas and (optionally) the DEM."""

    real: np.ndarray  # (bands, rows, cols) in the generators' image units (clipped to their range)
    heldout: np.ndarray  # (rows, cols) bool: the held-out area, valid pixels only
    training: np.ndarray  # (rows, cols) bool: the training area (the reference sample), valid pixels only
    elevation_m: np.ndarray | None = None  # (rows, cols) metres, NaN nodata
    pixel_size_m: tuple[float, float] = (30.0, 30.0)


def ground_of(real: Raster, real_units: np.ndarray, heldout: np.ndarray, valid: np.ndarray,
              dem_path: Path | None) -> Ground:
    """The :class:`Ground` of a real raster: held-out = ``heldout & valid``, training = the rest of ``valid``; the
    DEM (same grid) when ``dem_path`` names a file."""
    elevation = None
    if dem_path is not None and Path(dem_path).is_file():
        dem = read_raster(dem_path)
        elevation = np.where(dem.valid, dem.pixels[0].astype(np.float64), np.nan)
    return Ground(np.asarray(real_units, dtype=np.float32), heldout & valid, ~heldout & valid, elevation,
                  (abs(real.geotransform[1]), abs(real.geotransform[5])))


def measure_generators(generators: Mapping[str, tuple[Path, Path | None, np.ndarray]], ground: Ground,
                       landcover_path: Path, like: Raster, radiometry: Radiometry, reader: Path | None, work: Path,
                       seeds: tuple[int, int] | None = (1, 2), two_sample: TwoSampleConfig | None = QUICK_TWO_SAMPLE,
                       device: str = "cpu", frechet_patch_px: int = FEATURE_PATCH_PX) -> dict:
    """:func:`realism_measures` of ``{name: (model file, DEM file or None, generated image units)}`` plus, unless
    ``seeds`` or ``reader`` is None, each generator's seed diversity (its model run with two seeds, read by
    ``reader``; :mod:`.seeds`) in the held-out area."""
    measures = realism_measures(ground, {name: units for name, (_m, _d, units) in generators.items()}, two_sample,
                                frechet_patch_px=frechet_patch_px)
    if seeds is not None and reader is not None:
        for name, (model, dem, _units) in generators.items():
            renders = render_seeds(model, landcover_path, like, radiometry, reader, work, seeds, dem, device)
            measures["generators"][name]["seeds"] = _tried(seed_diversity, renders, ground.heldout)
    return measures


def _tried(measure: Callable[..., dict], *args: Any, **kwargs: Any) -> dict:
    """``measure(*args)``, or ``{"skipped": reason}`` where the ground is too small for it (logged)."""
    try:
        return measure(*args, **kwargs)
    except ValueError as exc:
        log.warning("%s skipped: %s", measure.__name__, exc)
        return {"skipped": str(exc)}


def realism_measures(ground: Ground, generated: Mapping[str, np.ndarray],
                     two_sample: TwoSampleConfig | None = QUICK_TWO_SAMPLE, blur_sigma_px: float = 1.0,
                     frechet_patch_px: int = FEATURE_PATCH_PX) -> dict:
    """The measures of each ``{name: (bands, rows, cols) image}`` (image units, valid where ``ground`` says).

    Returns ``{"frechet": ..., "generators": {name: {"peak_index", "relief", "two_sample"}}}``; ``two_sample``
    None skips the test (it trains a classifier: the slowest measure). A measure the areas are too small for (its
    patches do not fit) is ``{"skipped": reason}``.
    """
    out: dict = {"frechet": _tried(frechet_references, ground.real, generated, ground.training, ground.heldout,
                                   blur_sigma_px, frechet_patch_px), "generators": {}}
    both = ground.heldout | ground.training
    real_stretched = percentile_stretch(ground.real, both) if two_sample is not None else None
    for name, image in generated.items():
        entry: dict = {"peak_index": _tried(peak_index, image, ground.real, ground.heldout)}
        if ground.elevation_m is not None:
            entry["relief"] = _tried(relief_correlation, image, ground.real, ground.elevation_m, ground.heldout,
                                     ground.pixel_size_m)
        if two_sample is not None:
            log.info("two-sample test: real vs %s", name)
            result = _tried(two_sample_test, real_stretched, percentile_stretch(image, both), ground.training,
                            ground.heldout, two_sample)
            entry["two_sample"] = result if "skipped" in result else {
                "accuracy": result["accuracy"], "runs": result["runs"], "config": result["config"],
                "scored_on": "every non-overlapping patch of the held-out area (trained in the training area)"}
        out["generators"][name] = entry
    return out


def headline(measures: dict) -> dict[str, dict]:
    """The few numbers per generator that decide a recipe (for logs, tables and the summary); None where skipped."""
    frechet = measures["frechet"]
    rows = {}
    for name, entry in measures["generators"].items():
        relief, seeds = entry.get("relief", {}), entry.get("seeds", {})
        rows[name] = {
            "peak_index": entry["peak_index"].get("index"),
            "relief_ratio": relief.get("ratio"),
            "relief_generated": relief.get("generated", {}).get("correlation"),
            "relief_real": relief.get("real", {}).get("correlation"),
            "frechet": frechet.get("distances", {}).get(name),
            "frechet_over_real_other_area": frechet.get("over_real_other_area", {}).get(name),
            "two_sample_accuracy": entry.get("two_sample", {}).get("accuracy"),
            "seed_mean_abs_difference": seeds.get("mean_abs_difference"),
            "seed_layout_agreement": seeds.get("layout_agreement"),
        }
    return rows
