"""Scoring during and after fine-tuning: tiled prediction over the validation area, in memory, in torch.

The windows are the contract's (tile and overlap, centres kept), so the numbers are those of the exported model up
to the engine's blending. ``quick_windows`` picks a few fixed windows for the curve logged while training; the
report scores the whole validation area.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from ..evaluation.metrics import accuracy, confusion_matrix, iou_per_class, majority_baseline, mean_iou
from .base import freeze_norms
from .data import Scene
from .image_terms import lowpass_l1_sums


def predict(net: nn.Module, image: np.ndarray, tile: int = 256, overlap: int = 32) -> np.ndarray:
    """Class indices ``(H, W)`` of an image ``(bands, H, W)`` in [-1, 1], tile by tile (centres kept)."""
    _, h, w = image.shape
    out = np.zeros((h, w), dtype=np.int64)
    step = tile - 2 * overlap
    was = net.training
    net.eval()
    with torch.no_grad():
        for r in range(0, h, step):
            for c in range(0, w, step):
                r0, c0 = max(0, r - overlap), max(0, c - overlap)
                r1, c1 = min(h, r + step + overlap), min(w, c + step + overlap)
                x = torch.from_numpy(np.ascontiguousarray(image[:, r0:r1, c0:c1]))[None]
                ph, pw = (-x.shape[2]) % 4, (-x.shape[3]) % 4
                if ph or pw:
                    mode = "reflect" if min(x.shape[2], x.shape[3]) > max(ph, pw) else "replicate"
                    x = nn.functional.pad(x, (0, pw, 0, ph), mode=mode)
                y = net(x)[0, :, : r1 - r0, : c1 - c0].argmax(0).numpy()
                rr, cc = min(h, r + step), min(w, c + step)
                out[r:rr, c:cc] = y[r - r0: rr - r0, c - c0: cc - c0]
    restore_mode(net, was)
    return out


def restore_mode(net: nn.Module, training: bool) -> None:
    """Back to training mode after an evaluation, BatchNorm layers staying frozen (:func:`base.freeze_norms`)."""
    net.train(training)
    if training:
        freeze_norms(net)


def bbox(mask: np.ndarray) -> tuple[slice, slice]:
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1)


def quick_windows(scene: Scene, size: int = 128, count: int = 4) -> list[tuple[slice, slice]]:
    """Up to ``count`` fixed windows of the validation area with the most labelled pixels (for the curve)."""
    mask = scene.val & scene.labelled
    h, w = mask.shape
    size = min(size, h, w)
    scored = []
    for r in range(0, h - size + 1, size):
        for c in range(0, w - size + 1, size):
            scored.append((int(mask[r:r + size, c:c + size].sum()), r, c))
    scored.sort(reverse=True)
    picked = [(slice(r, r + size), slice(c, c + size)) for n, r, c in scored[:count] if n > 0]
    return picked or [bbox(mask)]


def scores(cm: np.ndarray, codes: tuple[int, ...]) -> dict[str, Any]:
    """Accuracy, mIoU and per-class IoU (by code) of a confusion matrix."""
    return {"accuracy": accuracy(cm), "mean_iou": mean_iou(cm),
            "iou_per_class": {str(c): (None if np.isnan(v) else float(v))
                              for c, v in zip(codes, iou_per_class(cm), strict=True)}}


def confusion(scene: Scene, windows: list[tuple[slice, slice]], predictor: Any, n_classes: int) -> np.ndarray:
    """Summed confusion matrix of ``predictor(image window) -> indices`` over validation pixels in ``windows``."""
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    for rows, cols in windows:
        truth = scene.labels[rows, cols]
        valid = scene.val[rows, cols] & (truth >= 0)
        if not valid.any():
            continue
        pred = predictor(scene.image[:, rows, cols])
        cm += confusion_matrix(truth, pred, n_classes, valid)
    return cm


def majority(cm: np.ndarray, codes: tuple[int, ...]) -> dict[str, Any]:
    """The majority baseline (always the commonest true class) of a confusion matrix, with per-class IoU."""
    base = majority_baseline(cm)
    truth = cm.sum(axis=1)
    fake = np.zeros_like(cm)
    fake[:, int(np.argmax(truth))] = truth
    return {**scores(fake, codes), "class_code": int(codes[int(base["class_index"])])}


def lowpass_l1(net: nn.Module, scene: Scene, windows: list[tuple[slice, slice]], n_classes: int,
               extra: int) -> float:
    """Mean low-pass L1 (:func:`~.image_terms.lowpass_l1_sums`) of the image generator against the real imagery, in
    [-1, 1] units, over fully labelled validation blocks (noise channels fed zeros: the mean image)."""
    total, count = 0.0, 0
    was = net.training
    net.eval()
    with torch.no_grad():
        for rows, cols in windows:
            labels = torch.from_numpy(scene.labels[rows, cols])
            h, w = labels.shape
            h, w = h - h % 4, w - w % 4
            labels = labels[:h, :w]
            x = onehot(labels[None], n_classes, extra)
            fake = net(x)
            real = torch.from_numpy(np.ascontiguousarray(scene.image[:, rows, cols][:, :h, :w]))[None]
            ok = ((labels >= 0) & torch.from_numpy(scene.val[rows, cols][:h, :w])).float()[None, None]
            window_total, window_count = lowpass_l1_sums(fake, real, ok)
            total += float(window_total)
            count += int(window_count)
    restore_mode(net, was)
    return total / count if count else float("nan")


def onehot(labels: torch.Tensor, n_classes: int, extra: int, noise: torch.Tensor | None = None) -> torch.Tensor:
    """``(B, H, W)`` indices (-1: no label) -> the image generator's input: one-hot (uniform 1/K without a label),
    then ``extra`` channels (noise, or zeros)."""
    b, h, w = labels.shape
    x = torch.zeros((b, n_classes + extra, h, w))
    known = labels >= 0
    x[:, :n_classes] = 1.0 / n_classes
    idx = labels.clamp(min=0)
    hot = nn.functional.one_hot(idx, n_classes).permute(0, 3, 1, 2).float()
    x[:, :n_classes] = torch.where(known[:, None], hot, x[:, :n_classes])
    if extra and noise is not None:
        x[:, n_classes:] = noise
    return x
