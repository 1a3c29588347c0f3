"""The realism and supervised-reference sections of ``make evaluate`` (``training.evaluation.report``), per area.

For each area (held-out and training area), given the real map, the real imagery and the imagery a LC -> RGB model
generated from the map:

* ``supervised_reference``: the judge (:mod:`.judge`, a U-Net trained with cross-entropy on REAL imagery of
  the training area) scored on the real imagery, next to the CycleGAN's RGB -> land cover;
* ``judge_frechet``: the Frechet distance of the judge's pooled features (:func:`.judge.pooled_features`)
  between generated and real imagery of the same cells, beside the references: real imagery of the training area
  vs the held-out area, two disjoint real samples of the training area (the floor) and a Gaussian blur (sigma 1 px)
  of the real imagery vs the real imagery. Every distance uses the same number of cells per set (FID-like
  estimates are biased by the sample size), so the numbers compare. ``generated_vs_real`` and ``blurred_vs_real``
  are CONTENT-MATCHED (the same cells), the real-vs-real reference is not: ``unmatched_vs_real_training`` compares
  each set with one real training-area sample none of them shares ground with (:mod:`.frechet` says why);
* ``judge_scores``: the judge reading the generated imagery against the map it was generated from, and reading
  the real imagery (how far the generated imagery is from "segmentable like real imagery");
* ``two_sample``: the classifier two-sample test (:mod:`.two_sample`) of generated vs real, with the
  blurred real imagery as its control (trained in the training area, scored in the held-out area; the training
  area's number is the fit on its validation patches). The control depends on the data only and is cached;
* ``checkerboard``: :func:`.realism.checkerboard_index`;
* ``texture``: :func:`.realism.compare_textures` (local standard deviation, gradient magnitude per class).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from lcgan_qgis.core.errors import InputRasterError
from lcgan_qgis.core.model.scheme import ClassScheme

from .frechet import frechet_distance
from .judge import DEFAULT_CACHE_DIR, FEATURE_CELL_PX, Judge, JudgeConfig, pooled_features
from .realism import (
    checkerboard_index,
    compare_textures,
    gaussian_blur,
    grid_patches,
    percentile_stretch,
)
from .two_sample import TwoSampleConfig, two_sample_test

log = logging.getLogger(__name__)

DEFAULT_TRAIN_AREAS = Path(__file__).resolve().parents[1] / "configs" / "zion_areas" / "train_north.geojson"
HELDOUT, TRAINING = "heldout", "training_area"
MIN_CELLS = 8  # cells per sample below which a Frechet distance means little
CONTROL_CODE_VERSION = 1  # bump when the blurred control's computation changes: cached controls then rerun


@dataclass(frozen=True)
class RealismOptions:
    """What the realism sections run (defaults: ``make evaluate``'s)."""

    train_areas: Path = DEFAULT_TRAIN_AREAS  # the judge's training windows (the bundled models' training area)
    judge: JudgeConfig = field(default_factory=JudgeConfig)
    judge_cache_dir: Path | None = None  # judges and the blurred control (None: ~/.cache/lcgan/judge)
    two_sample: TwoSampleConfig = field(default_factory=TwoSampleConfig)
    blur_sigma_px: float = 1.0
    feature_cell_px: int = FEATURE_CELL_PX
    checkerboard_patch_px: int = 32
    window_sizes_px: tuple[int, ...] = (128, 256, 512)
    seed: int = 0  # which training-area cells form the real-vs-real samples


@dataclass(frozen=True)
class Imagery:
    """The images every measure compares, on one grid, in the training imagery's units."""

    real: np.ndarray  # (bands, rows, cols) as read
    generated: np.ndarray  # the LC -> RGB model's output mapped back to image units
    blurred: np.ndarray  # the real imagery blurred (the control)
    valid: np.ndarray  # (rows, cols): real and generated both valid, the map valid

    @classmethod
    def of(cls, real: np.ndarray, generated: np.ndarray, valid: np.ndarray, blur_sigma_px: float) -> Imagery:
        return cls(real, generated, gaussian_blur(real, blur_sigma_px), valid)


JudgeMaps = tuple[np.ndarray, np.ndarray, np.ndarray]  # Judge.maps: (class indices, bottleneck, top decoder map)


def judge_maps(judge: Judge, images: Imagery) -> dict[str, JudgeMaps]:
    """The judge's outputs on the real, generated and blurred imagery (one pass each)."""
    return {name: judge.maps(judge.normalize(getattr(images, name))) for name in ("real", "generated", "blurred")}


def _judge_frechet(maps: Mapping[str, JudgeMaps], bottleneck_scale: int, valid: np.ndarray,
                   masks: Mapping[str, np.ndarray], options: RealismOptions) -> dict[str, dict]:
    """The judge's Frechet distances per area (see the module docstring), ``samples_per_set`` cells each."""
    cell = options.feature_cell_px
    cells = {area: grid_patches(mask & valid, cell) for area, mask in masks.items()}
    n = min(len(cells[HELDOUT]), len(cells[TRAINING]) // 2)
    if n < MIN_CELLS:
        raise InputRasterError(
            f"Too few wholly valid {cell} px cells for the judge's Frechet distances: {len(cells[HELDOUT])} in the "
            f"held-out area and {len(cells[TRAINING])} in the training area (need {MIN_CELLS} and {2 * MIN_CELLS}). "
            "Use larger areas, or run without the realism sections (--no-realism)."
        )
    rng = np.random.default_rng(options.seed)
    order = rng.permutation(len(cells[TRAINING]))
    train_a = [cells[TRAINING][i] for i in sorted(order[:n])]
    train_b = [cells[TRAINING][i] for i in sorted(order[n:2 * n])]
    held = [cells[HELDOUT][i] for i in sorted(rng.permutation(len(cells[HELDOUT]))[:n])]

    def feats(name: str, corners: list[tuple[int, int]]) -> np.ndarray:
        _idx, deep, top = maps[name]
        return pooled_features(deep, top, corners, bottleneck_scale, cell)

    real_vs_real = frechet_distance(feats("real", train_a), feats("real", held))
    floor = frechet_distance(feats("real", train_a), feats("real", train_b))
    _idx, deep, top = maps["real"]
    out = {}
    for area, corners, reference in ((HELDOUT, held, train_a), (TRAINING, train_a, train_b)):
        real = feats("real", corners)
        generated = frechet_distance(feats("generated", corners), real)
        out[area] = {
            "generated_vs_real": round(generated, 3),
            "blurred_vs_real": round(frechet_distance(feats("blurred", corners), real), 3),
            "real_training_vs_heldout": round(real_vs_real, 3),
            "real_vs_real_floor": round(floor, 3),
            "generated_over_real_vs_real": round(generated / max(real_vs_real, 1e-12), 3),
            "unmatched_vs_real_training": {  # no set shares its ground with the reference sample (frechet.py)
                name: round(frechet_distance(feats(name, corners), feats("real", reference)), 3)
                for name in ("real", "generated", "blurred")},
            "samples_per_set": n, "cell_px": cell,
            "features": f"judge bottleneck ({deep.shape[0]} ch) + top decoder ({top.shape[0]} ch), mean per cell",
        }
    return out


def blurred_control(real: np.ndarray, blurred: np.ndarray, train: np.ndarray, test: np.ndarray,
                    options: RealismOptions) -> dict:
    """The two-sample test of real vs blurred real imagery: it depends on the data only, not on the models, so its
    result is cached (JSON) beside the judges under a digest of its inputs and config."""
    digest = hashlib.sha256()
    for array in (real, blurred, train, test):
        digest.update(np.ascontiguousarray(array).tobytes())
    digest.update(json.dumps([asdict(options.two_sample), options.blur_sigma_px, CONTROL_CODE_VERSION]).encode())
    path = Path(options.judge_cache_dir or DEFAULT_CACHE_DIR) / f"two-sample-blurred-{digest.hexdigest()[:16]}.json"
    if path.is_file():
        log.info("two-sample test: real vs blurred imagery from %s", path)
        return {**json.loads(path.read_text(encoding="utf-8")), "cache": {"path": str(path), "reused": True}}
    log.info("two-sample test: real vs blurred imagery")
    result = two_sample_test(real, blurred, train, test, options.two_sample)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result), encoding="utf-8")
    os.replace(tmp, path)
    return {**result, "cache": {"path": str(path), "reused": False}}


def realism_sections(maps: Mapping[str, JudgeMaps], bottleneck_scale: int, images: Imagery, true_idx: np.ndarray,
                     masks: Mapping[str, np.ndarray], scheme: ClassScheme, band_names: list[str],
                     real_for_texture: np.ndarray, score: Callable[[np.ndarray, np.ndarray, np.ndarray], dict],
                     options: RealismOptions) -> dict[str, dict]:
    """Per area, the LC -> RGB realism measures of the module docstring.

    Args:
        maps: :func:`judge_maps` of ``images``; ``bottleneck_scale``: the judge's pixels per bottleneck cell.
        images: real, generated and blurred imagery and their common validity.
        true_idx: the real map as class indices; ``masks``: ``{"heldout": ..., "training_area": ...}``.
        real_for_texture: the real imagery as the texture statistics see it (clipped to the generator's range).
        score: ``(true_idx, pred_idx, valid) -> scores`` (``training.evaluation.report.score_landcover``).

    Returns:
        ``{"heldout": {...}, "training_area": {...}}`` with the keys ``judge_frechet``, ``judge_scores``,
        ``two_sample``, ``checkerboard`` and ``texture``.
    """
    valid = images.valid
    frechet = _judge_frechet(maps, bottleneck_scale, valid, masks, options)
    stretched = {name: percentile_stretch(getattr(images, name), valid) for name in ("real", "generated", "blurred")}
    train, test = masks[TRAINING] & valid, masks[HELDOUT] & valid
    log.info("two-sample test: real vs generated imagery")
    tests = {"generated": two_sample_test(stretched["real"], stretched["generated"], train, test, options.two_sample),
             "blurred": blurred_control(stretched["real"], stretched["blurred"], train, test, options)}

    def training_fit(name: str) -> float:
        return round(float(np.mean([r["val_accuracy"] for r in tests[name]["runs"]])), 4)

    out = {}
    for area, mask in masks.items():
        m = mask & valid
        generated, real = score(true_idx, maps["generated"][0], m), score(true_idx, maps["real"][0], m)
        held = area == HELDOUT
        out[area] = {
            "judge_frechet": frechet[area],
            "judge_scores": {
                "generated": {"accuracy": generated["accuracy"], "miou": generated["miou"]},
                "real": {"accuracy": real["accuracy"], "miou": real["miou"]},
                "note": "the judge (a supervised U-Net trained on real imagery) reading each imagery vs the map",
            },
            "two_sample": {
                "accuracy": tests["generated"]["accuracy"] if held else training_fit("generated"),
                "control_blurred_accuracy": tests["blurred"]["accuracy"] if held else training_fit("blurred"),
                "scored_on": ("every non-overlapping patch of the held-out area (trained in the training area)"
                              if held else "training-area validation patches (a fit, not a test)"),
            },
            "checkerboard": checkerboard_index(images.generated, images.real, m, options.checkerboard_patch_px),
            "texture": compare_textures(real_for_texture, images.generated, true_idx, m, scheme, band_names),
        }
    out[HELDOUT]["two_sample"]["runs"] = {name: tests[name] for name in tests}
    return out
