"""Pictures of an evaluation (``training.evaluation.report``): confusion matrix, class colour swatches, overview panels.

Matplotlib's object API (``Figure``) needs no GUI backend and leaves pyplot's global state alone.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

with warnings.catch_warnings():  # Debian's and pip's matplotlib side by side: mplot3d is not needed here
    warnings.filterwarnings("ignore", message="Unable to import Axes3D")
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch, Rectangle

from lcgan_qgis.core.model.contract import Radiometry, to_uint8
from lcgan_qgis.core.model.scheme import ClassScheme


def codes_to_rgb(codes: np.ndarray, scheme: ClassScheme, background: int = 255) -> np.ndarray:
    """``(rows, cols)`` land-cover codes -> ``(rows, cols, 3)`` uint8 in the scheme's colours (others: background)."""
    lut = np.full((max(*scheme.codes, scheme.nodata_code, int(codes.max(initial=0))) + 1, 3), background, np.uint8)
    for cls in scheme.classes:
        lut[cls.code] = cls.rgba[:3]
    return lut[codes]


def image_to_display(image: np.ndarray, radiometry: Radiometry) -> np.ndarray:
    """``(bands, rows, cols)`` imagery in the model's units -> ``(rows, cols, 3)`` uint8 through its radiometry."""
    return to_uint8(radiometry.normalize(image[:3])).transpose(1, 2, 0)


def legend_handles(scheme: ClassScheme, codes_present: set[int]) -> list[Patch]:
    """Legend patches for the classes in ``codes_present``, in scheme order."""
    return [Patch(facecolor=np.array(c.rgba[:3]) / 255.0, edgecolor="0.3", label=f"{c.code} {c.name}")
            for c in scheme.classes if c.code in codes_present]


def plot_confusion(cm: np.ndarray, scheme: ClassScheme, path: str | Path, title: str) -> Path:
    """Row-normalised confusion matrix (rows: true class; each row sums to 100 %), with the pixel count per row."""
    cm = np.asarray(cm, dtype=np.float64)
    rows = cm.sum(axis=1, keepdims=True)
    share = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    labels = [f"{c.code} {c.name}" for c in scheme.classes]
    fig = Figure(figsize=(10.5, 8.5))
    ax = fig.subplots()
    im = ax.imshow(share * 100.0, cmap="Blues", vmin=0, vmax=100)
    for i in range(len(labels)):
        for j in range(len(labels)):
            if share[i, j] >= 0.01:
                ax.text(j, i, f"{100 * share[i, j]:.0f}", ha="center", va="center", fontsize=7,
                        color="white" if share[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(labels)), [str(c.code) for c in scheme.classes])
    ax.set_yticks(range(len(labels)), [f"{lab} ({int(rows[i, 0])} px)" for i, lab in enumerate(labels)], fontsize=8)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=ax, label="% of the true class's pixels", shrink=0.8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return Path(path)


def plot_colour_swatches(colours: dict, scheme: ClassScheme, radiometry: Radiometry, path: str | Path) -> Path:
    """Per class: the real and the generated mean colour side by side, with pixel counts and mean values."""
    rows = [(c, colours["per_class"][str(c.code)]) for c in scheme.classes
            if colours["per_class"][str(c.code)]["pixels"] > 0]
    fig = Figure(figsize=(9.5, 0.42 * len(rows) + 1.2))
    ax = fig.subplots()
    for y, (cls, stats) in enumerate(rows):
        for x, key in ((0, "real_mean"), (1, "generated_mean")):
            mean = np.array(stats[key], dtype=np.float32).reshape(-1, 1, 1)
            rgb = image_to_display(mean, radiometry)[0, 0] / 255.0
            ax.add_patch(Rectangle((x, y), 0.9, 0.85, facecolor=rgb, edgecolor="0.3"))
        ax.add_patch(Rectangle((-0.6, y + 0.2), 0.4, 0.45, facecolor=np.array(cls.rgba[:3]) / 255.0))
        text = (f"{cls.code} {cls.name} ({stats['pixels']} px): real {_fmt(stats['real_mean'])} "
                f"+- {_fmt(stats['real_std'])}, generated {_fmt(stats['generated_mean'])} "
                f"+- {_fmt(stats['generated_std'])}")
        ax.text(2.05, y + 0.45, text, va="center", fontsize=7.5)
    ax.text(0.45, -0.3, "real", ha="center", fontsize=9)
    ax.text(1.45, -0.3, "generated", ha="center", fontsize=9)
    ax.set_xlim(-0.7, 12)
    ax.set_ylim(len(rows), -0.7)
    ax.axis("off")
    ax.set_title("Mean colour per land-cover class, real vs generated (image units, bands "
                 f"{'/'.join(colours['bands'])})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return Path(path)


def _fmt(values: list[float | None]) -> str:
    return "(" + ", ".join("-" if v is None else f"{v:.0f}" for v in values) + ")"


def plot_overview(landcover: np.ndarray, lc_valid: np.ndarray, real_image: np.ndarray, generated_uint8: np.ndarray,
                  predicted: np.ndarray, scheme: ClassScheme, radiometry: Radiometry, path: str | Path) -> Path:
    """Four panels: real land cover | generated imagery | real imagery | land cover predicted from real imagery."""
    lc_rgb = codes_to_rgb(np.where(lc_valid, landcover, scheme.nodata_code), scheme)
    panels = [
        (lc_rgb, "real land cover (NLCD 2011)"),
        (generated_uint8[:3].transpose(1, 2, 0), "generated imagery (land cover -> RGB)"),
        (image_to_display(real_image, radiometry), "real Landsat 8 imagery"),
        (codes_to_rgb(predicted, scheme), "land cover predicted from the real imagery"),
    ]
    fig = Figure(figsize=(20, 5.6))
    axes = fig.subplots(1, 4)
    for ax, (img, title) in zip(axes, panels, strict=True):
        ax.imshow(img, interpolation="nearest")
        ax.set_title(title, fontsize=10)
        ax.axis("off")
    present = set(np.unique(landcover[lc_valid]).tolist()) | set(np.unique(predicted).tolist())
    fig.legend(handles=legend_handles(scheme, present), loc="lower center", ncol=7, fontsize=8, frameon=False)
    fig.suptitle("Zion sample (training area)", fontsize=11)
    fig.tight_layout(rect=(0, 0.08, 1, 0.97))
    fig.savefig(path, dpi=80)
    return Path(path)


def crop_corners(mask: np.ndarray, crop_px: int, count: int) -> tuple[int, list[tuple[int, int]]]:
    """``(side, corners)``: ``count`` top-left corners of squares spread evenly across ``mask``'s bounding box,
    each wholly inside the mask; ``side`` is ``crop_px``, or less where the area is smaller."""
    rows, cols = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
    if rows.size == 0:
        return crop_px, []
    crop_px = int(min(crop_px, rows[-1] - rows[0] + 1, (cols[-1] - cols[0] + 1) // count))
    if crop_px < 8:
        return crop_px, []
    r = int(rows[0] + (rows[-1] - rows[0] + 1 - crop_px) // 2)
    starts = np.linspace(cols[0], cols[-1] + 1 - crop_px, count).round().astype(int)
    return crop_px, [(r, int(c)) for c in starts if mask[r:r + crop_px, c:c + crop_px].all()]


def plot_crops(landcover: np.ndarray, lc_valid: np.ndarray, real_image: np.ndarray, generated_uint8: np.ndarray,
               area: np.ndarray, scheme: ClassScheme, radiometry: Radiometry, path: str | Path, crop_px: int = 256,
               count: int = 3, gap_px: int = 8, more: Sequence[tuple[str, np.ndarray]] = ()) -> Path:
    """Crops of an area at FULL resolution (one raster pixel = one picture pixel, no resampling): per row, the
    land-cover map, the imagery generated from it (and by the generators of ``more``: ``(title, uint8 image)``)
    and the real imagery of the same ground. Crops are ``crop_px`` squares (smaller where the area is) placed by
    :func:`crop_corners`; the layout is in :func:`crop_layout`."""
    crop_px, corners = crop_corners(area & lc_valid, crop_px, count)
    lc_rgb = codes_to_rgb(np.where(lc_valid, landcover, scheme.nodata_code), scheme)
    panels = [lc_rgb, generated_uint8[:3].transpose(1, 2, 0), *(m[:3].transpose(1, 2, 0) for _t, m in more),
              image_to_display(real_image, radiometry)]
    titles = ["land cover (NLCD 2011)", "generated from it" if not more else "generated: map only",
              *(t for t, _m in more), "real Landsat 8"]
    columns = len(panels)
    width, height, dpi = *crop_layout(crop_px, len(corners), gap_px, columns=columns)[:2], 100
    fig = Figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    present: set[int] = set()
    for i, (r, c) in enumerate(corners):
        window = (slice(r, r + crop_px), slice(c, c + crop_px))
        for j, panel in enumerate(panels):
            x, y = crop_layout(crop_px, len(corners), gap_px, i, j, columns)[2:]
            fig.figimage(np.ascontiguousarray(panel[window]), xo=x, yo=height - y - crop_px, origin="upper")
        present |= set(np.unique(landcover[window][lc_valid[window]]).tolist())
    for j, title in enumerate(titles):
        fig.text((gap_px + j * (crop_px + gap_px) + crop_px / 2) / width, 1 - 24 / height, title, ha="center",
                 fontsize=10)  # figimage counts from the bottom, the layout from the top
    fig.legend(handles=legend_handles(scheme, present), loc="lower center", ncol=4, fontsize=7, frameon=False)
    fig.savefig(path, dpi=dpi)
    return Path(path)


def crop_layout(crop_px: int, rows: int, gap_px: int = 8, row: int = 0, col: int = 0,
                columns: int = 3) -> tuple[int, int, int, int]:
    """``(width, height, x, y)`` of :func:`plot_crops`' picture (``columns`` panels a row) and the top-left pixel of
    panel ``(row, col)`` (counted from the picture's top-left corner)."""
    top_px, bottom_px = 36, 64
    width = columns * crop_px + (columns + 1) * gap_px
    height = top_px + max(1, rows) * (crop_px + gap_px) + bottom_px
    return width, height, gap_px + col * (crop_px + gap_px), top_px + row * (crop_px + gap_px)
