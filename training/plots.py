"""Training pictures: the loss plot (from the per-step CSV) and the sample grid (class colours from the scheme)."""

from __future__ import annotations

import csv
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lcgan_qgis.core.model.scheme import ClassScheme

with warnings.catch_warnings():  # Debian's matplotlib beside the pip one cannot offer 3-D axes; we draw none
    warnings.filterwarnings("ignore", message="Unable to import Axes3D")
    from matplotlib.figure import Figure  # the object API (no pyplot state, no GUI backend), as evaluation_plots

LOSS_GROUPS = {
    "generators: adversarial": ("g_adv_rgb", "g_adv_lc"),
    "generators: cycle (and paired)": ("cycle_rgb_l1", "cycle_lc_ce", "paired_rgb_l1", "paired_lc_ce"),
    "discriminators": ("d_rgb", "d_lc"),
}


def read_loss_csv(path: str | Path) -> dict[str, np.ndarray]:
    """The per-step CSV as columns of floats."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return {}
    return {key: np.array([float(r[key]) for r in rows]) for key in rows[0]}


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average (``window`` steps; shorter at the start)."""
    if window <= 1 or values.size == 0:
        return values
    cumsum = np.cumsum(np.insert(values, 0, 0.0))
    out = np.empty_like(values)
    for i in range(values.size):
        lo = max(0, i + 1 - window)
        out[i] = (cumsum[i + 1] - cumsum[lo]) / (i + 1 - lo)
    return out


def plot_losses(csv_path: str | Path, png_path: str | Path, title: str = "") -> None:
    """Three panels (adversarial, cycle, discriminator losses): raw per-step values faint, moving average bold."""
    cols = read_loss_csv(csv_path)
    if not cols:
        return
    steps = cols["step"]
    window = max(1, steps.size // 50)
    fig = Figure(figsize=(15, 4), layout="constrained")
    axes = fig.subplots(1, 3)
    for ax, (name, keys) in zip(axes, LOSS_GROUPS.items(), strict=True):
        for key in keys:
            if key in cols and np.any(cols[key]):
                line = ax.plot(steps, cols[key], alpha=0.2, linewidth=0.5)[0]
                ax.plot(steps, smooth(cols[key], window), color=line.get_color(), label=f"{key} (mean of {window})")
        ax.set_title(name)
        ax.set_xlabel("step")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.savefig(png_path, dpi=90)


def colorize(indices: np.ndarray, scheme: ClassScheme, valid: np.ndarray | None = None) -> np.ndarray:
    """Class indices ``[H, W]`` -> RGB uint8 ``[H, W, 3]`` in the scheme's colours (invalid pixels black)."""
    rgb = scheme.colors[np.asarray(indices)][..., :3].copy()
    if valid is not None:
        rgb[~valid] = 0
    return rgb


def image_to_uint8(chw: np.ndarray) -> np.ndarray:
    """``[3, H, W]`` in [-1, 1] -> ``[H, W, 3]`` uint8."""
    return np.rint((np.clip(chw[:3], -1, 1).transpose(1, 2, 0) + 1.0) * 127.5).astype(np.uint8)


def plot_samples(rows: Sequence[dict[str, np.ndarray]], scheme: ClassScheme, png_path: str | Path,
                 title: str = "") -> None:
    """Sample grid: per sample two rows, real LC / fake RGB / reconstructed LC and real RGB / fake LC / rec. RGB.

    Each row dict holds ``lc_index``, ``lc_valid``, ``fake_rgb``, ``rec_lc`` (indices), ``rgb``, ``fake_lc``
    (indices), ``rec_rgb``.
    """
    n = len(rows)
    fig = Figure(figsize=(9, 6 * n), layout="constrained")
    axes = fig.subplots(2 * n, 3, squeeze=False)
    heads = (("real LC", "fake RGB = G_lc2rgb(LC)", "reconstructed LC"),
             ("real RGB", "fake LC = argmax G_rgb2lc(RGB)", "reconstructed RGB"))
    for i, r in enumerate(rows):
        panels = (
            (colorize(r["lc_index"], scheme, r["lc_valid"]), image_to_uint8(r["fake_rgb"]),
             colorize(r["rec_lc"], scheme)),
            (image_to_uint8(r["rgb"]), colorize(r["fake_lc"], scheme), image_to_uint8(r["rec_rgb"])),
        )
        for j, (row_panels, row_heads) in enumerate(zip(panels, heads, strict=True)):
            for k, (img, head) in enumerate(zip(row_panels, row_heads, strict=True)):
                ax = axes[2 * i + j][k]
                ax.imshow(img, interpolation="nearest")
                ax.set_axis_off()
                if i == 0:
                    ax.set_title(head, fontsize=9)
    if title:
        fig.suptitle(title)
    fig.savefig(png_path, dpi=80)
