"""Scores of ``make evaluate``: land-cover accuracy with its majority baseline, and per-class colour statistics of
generated vs real imagery (in the training imagery's units)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from lcgan_qgis.core.model.contract import Radiometry
from lcgan_qgis.core.model.scheme import ClassScheme

from .metrics import accuracy, confusion_matrix, iou_per_class, majority_baseline, mean_iou
from .realism import class_means


# -- land-cover scores ----------------------------------------------------------------------------------------------
def score_landcover(true_idx: np.ndarray, pred_idx: np.ndarray, valid: np.ndarray, scheme: ClassScheme) -> dict:
    """Accuracy, per-class IoU, mIoU and the confusion matrix (rows: true class, columns: predicted) on ``valid``."""
    n = len(scheme)
    cm = confusion_matrix(true_idx[valid], pred_idx[valid], n)
    ious = iou_per_class(cm)
    true_share = cm.sum(axis=1) / max(cm.sum(), 1)
    pred_share = cm.sum(axis=0) / max(cm.sum(), 1)
    return {
        "pixels": int(cm.sum()),
        "accuracy": float(accuracy(cm)),
        "miou": float(mean_iou(cm)),
        "iou_per_class": {
            str(c.code): {"name": c.name, "iou": None if np.isnan(ious[i]) else float(ious[i]),
                          "true_share": float(true_share[i]), "predicted_share": float(pred_share[i])}
            for i, c in enumerate(scheme.classes)
        },
        "confusion_matrix": cm.tolist(),
    }


def baseline_scores(scores: dict, scheme: ClassScheme) -> dict:
    """The majority-class baseline (``metrics.majority_baseline``) for the pixels ``scores`` counted."""
    base = majority_baseline(np.array(scores["confusion_matrix"]))
    cls = scheme.classes[base["class_index"]]
    return {"class": cls.code, "name": cls.name, "accuracy": float(base["accuracy"]), "miou": float(base["mean_iou"])}


# -- colour statistics ----------------------------------------------------------------------------------------------
def colour_statistics(image: np.ndarray, class_idx: np.ndarray, valid: np.ndarray,
                      n_classes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-class pixel counts ``(n,)``, band means and stds ``(n, bands)`` (NaN where a class has no pixel)."""
    values = image.astype(np.float64)
    counts, means = class_means(values, class_idx, valid, n_classes)
    _, mean_squares = class_means(values * values, class_idx, valid, n_classes)
    return counts, means, np.sqrt(np.maximum(mean_squares - means * means, 0.0))


def compare_colours(real: np.ndarray, generated: np.ndarray, class_idx: np.ndarray, valid: np.ndarray,
                    scheme: ClassScheme, band_names: Sequence[str]) -> dict:
    """Per-class mean/std of real vs generated imagery, and the pixel-weighted error of the class means.

    The baseline paints every pixel in the real image's global mean colour: its class-mean error is what a
    generator that ignored the land cover would get at best.
    """
    n = len(scheme)
    counts, real_mean, real_std = colour_statistics(real, class_idx, valid, n)
    _, gen_mean, gen_std = colour_statistics(generated, class_idx, valid, n)
    present = counts > 0
    weights = counts[present] / counts[present].sum()
    global_mean = np.array([real[b][valid].astype(np.float64).mean() for b in range(real.shape[0])])
    error = (weights[:, None] * np.abs(gen_mean[present] - real_mean[present])).sum(axis=0)
    baseline = (weights[:, None] * np.abs(global_mean[None] - real_mean[present])).sum(axis=0)

    def rounded(values: np.ndarray) -> list[float | None]:
        return [None if np.isnan(v) else round(float(v), 2) for v in values]

    return {
        "bands": list(band_names),
        "per_class": {
            str(c.code): {"name": c.name, "pixels": int(counts[i]), "real_mean": rounded(real_mean[i]),
                          "real_std": rounded(real_std[i]), "generated_mean": rounded(gen_mean[i]),
                          "generated_std": rounded(gen_std[i])}
            for i, c in enumerate(scheme.classes)
        },
        "class_mean_abs_error": rounded(error),
        "baseline_global_mean_abs_error": rounded(baseline),
        "real_global_mean": rounded(global_mean),
    }


def generated_to_image_units(rgb_uint8: np.ndarray, radiometry: Radiometry) -> np.ndarray:
    """The engine's display uint8 output (0..255 = [-1, 1]) -> the training imagery's units via the radiometry."""
    return radiometry.denormalize(rgb_uint8.astype(np.float32) / 127.5 - 1.0)


def clip_to_radiometry(image: np.ndarray, radiometry: Radiometry) -> np.ndarray:
    """Real imagery clipped per band to the model's ``[low, high]`` (what the generator can produce)."""
    low = np.asarray(radiometry.low, dtype=np.float32)[:, None, None]
    high = np.asarray(radiometry.high, dtype=np.float32)[:, None, None]
    return np.clip(image.astype(np.float32), low, high)


def split_scores(true_idx: np.ndarray, pred_idx: np.ndarray, valid: np.ndarray, inside: np.ndarray,
                 scheme: ClassScheme) -> dict:
    """Scores (with their majority baselines) inside and outside a held-out area."""
    out = {}
    for name, mask in (("heldout", valid & inside), ("training_area", valid & ~inside)):
        scores = score_landcover(true_idx, pred_idx, mask, scheme)
        scores["baseline_majority"] = baseline_scores(scores, scheme)
        out[name] = scores
    return out


def scorer(scheme: ClassScheme) -> Callable[[np.ndarray, np.ndarray, np.ndarray], dict]:
    """``(truth, predicted, mask) -> land-cover scores with the majority baseline`` for ``scheme``."""
    def score(truth: np.ndarray, predicted: np.ndarray, mask: np.ndarray) -> dict:
        scores = score_landcover(truth, predicted, mask, scheme)
        scores["baseline_majority"] = baseline_scores(scores, scheme)
        return scores

    return score
