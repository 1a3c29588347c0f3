"""The realism measures of issue 22 on arrays already in memory: one call for ``make evaluate`` and for training.

Per generated image of the held-out area: the periodic-texture peak index (:mod:`.periodic`), the relief correlation
(:mod:`.relief`, when a DEM is given), the classifier two-sample test (:mod:`.two_sample`: trained in the training
area, scored on every non-overlapping patch of the held-out area); across them, the texture Frechet distance with its
two references (:mod:`.frechet`). Seed diversity and the crops need model runs: :mod:`.seeds`, :mod:`.crops`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .frechet import frechet_references
from .periodic import peak_index
from .realism import percentile_stretch
from .relief import relief_correlation
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


def realism_measures(ground: Ground, generated: Mapping[str, np.ndarray],
                     two_sample: TwoSampleConfig | None = QUICK_TWO_SAMPLE, blur_sigma_px: float = 1.0) -> dict:
    """The measures of each ``{name: (bands, rows, cols) image}`` (image units, valid where ``ground`` says).

    Returns ``{"frechet": ..., "generators": {name: {"peak_index", "relief", "two_sample"}}}``; ``two_sample``
    None skips the test (it trains a classifier: the slowest measure).
    """
    out: dict = {"frechet": frechet_references(ground.real, generated, ground.training, ground.heldout,
                                               blur_sigma_px), "generators": {}}
    both = ground.heldout | ground.training
    real_stretched = percentile_stretch(ground.real, both) if two_sample is not None else None
    for name, image in generated.items():
        entry: dict = {"peak_index": peak_index(image, ground.real, ground.heldout)}
        if ground.elevation_m is not None:
            entry["relief"] = relief_correlation(image, ground.real, ground.elevation_m, ground.heldout,
                                                 ground.pixel_size_m)
        if two_sample is not None:
            log.info("two-sample test: real vs %s", name)
            result = two_sample_test(real_stretched, percentile_stretch(image, both), ground.training,
                                     ground.heldout, two_sample)
            entry["two_sample"] = {"accuracy": result["accuracy"], "runs": result["runs"],
                                   "scored_on": "every non-overlapping patch of the held-out area (trained in the "
                                                "training area)", "config": result["config"]}
        out["generators"][name] = entry
    return out


def headline(measures: dict) -> dict[str, dict]:
    """The few numbers per generator that decide a recipe (for logs, tables and the summary)."""
    frechet = measures["frechet"]
    rows = {}
    for name, entry in measures["generators"].items():
        relief = entry.get("relief")
        rows[name] = {
            "peak_index": entry["peak_index"]["index"],
            "relief_ratio": relief["ratio"] if relief else None,
            "relief_generated": relief["generated"]["correlation"] if relief else None,
            "relief_real": relief["real"]["correlation"] if relief else None,
            "frechet": frechet["distances"][name],
            "frechet_over_real_other_area": frechet["over_real_other_area"][name],
            "two_sample_accuracy": entry.get("two_sample", {}).get("accuracy"),
        }
        if "seeds" in entry:
            rows[name]["seed_mean_abs_difference"] = entry["seeds"]["mean_abs_difference"]
            rows[name]["seed_layout_agreement"] = entry["seeds"]["layout_agreement"]
    return rows
