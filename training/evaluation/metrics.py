"""Land-cover accuracy metrics (pure numpy): confusion matrix, pixel accuracy, per-class IoU, mIoU, baseline."""

from __future__ import annotations

import numpy as np


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int,
                     valid_mask: np.ndarray | None = None) -> np.ndarray:
    """``[n_classes, n_classes]`` int64 counts, rows = true class, columns = predicted class.

    Args:
        y_true: true class indices (any shape).
        y_pred: predicted class indices (same shape).
        n_classes: number of classes; indices outside ``0..n_classes-1`` raise ValueError.
        valid_mask: bool array of the same shape; False pixels are ignored (None = all count).
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true {y_true.shape} and y_pred {y_pred.shape} differ in shape.")
    if valid_mask is not None:
        valid_mask = np.asarray(valid_mask, dtype=bool)
        if valid_mask.shape != y_true.shape:
            raise ValueError(f"valid_mask {valid_mask.shape} and labels {y_true.shape} differ in shape.")
        y_true, y_pred = y_true[valid_mask], y_pred[valid_mask]
    t, p = y_true.ravel().astype(np.int64), y_pred.ravel().astype(np.int64)
    for name, a in (("y_true", t), ("y_pred", p)):
        if a.size and (a.min() < 0 or a.max() >= n_classes):
            raise ValueError(f"{name} holds indices outside 0..{n_classes - 1} (min {a.min()}, max {a.max()}).")
    return np.bincount(t * n_classes + p, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def accuracy(cm: np.ndarray) -> float:
    """Pixel accuracy: correct / all counted pixels (nan when none)."""
    total = cm.sum()
    return float(np.trace(cm) / total) if total else float("nan")


def iou_per_class(cm: np.ndarray) -> np.ndarray:
    """Intersection over union per class; nan for classes absent from both truth and prediction."""
    tp = np.diag(cm).astype(np.float64)
    union = cm.sum(axis=0) + cm.sum(axis=1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, tp / union, np.nan)


def mean_iou(cm: np.ndarray, present_only: bool = True) -> float:
    """Mean IoU over classes present in the truth (``present_only``) or over all non-nan classes."""
    iou = iou_per_class(cm)
    if present_only:
        iou = iou[cm.sum(axis=1) > 0]
    iou = iou[~np.isnan(iou)]
    return float(iou.mean()) if iou.size else float("nan")


def majority_baseline(cm: np.ndarray) -> dict[str, float]:
    """Accuracy and mIoU of always predicting the most frequent true class."""
    truth = cm.sum(axis=1)
    majority = int(np.argmax(truth))
    base = np.zeros_like(cm)
    base[:, majority] = truth
    return {"class_index": majority, "accuracy": accuracy(base), "mean_iou": mean_iou(base)}


def psnr_db(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    """Peak signal-to-noise ratio of ``b`` against ``a`` in dB (``peak``: the value range, 255 for 8-bit imagery);
    inf for identical arrays, rounded to 0.01 dB."""
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return float("inf") if mse == 0 else round(10.0 * float(np.log10(peak * peak / mse)), 2)
