"""The demo quicklook: input land cover (with legend) | synthetic RGB | land cover predicted back (with legend).

Also measures how well the land cover predicted back from the synthetic imagery agrees with the input map (pixel
accuracy, mIoU, per-class IoU; ``training.evaluation.metrics``), the figure's headline.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from osgeo import gdal

from lcgan_qgis.core.errors import InputRasterError
from lcgan_qgis.core.model.scheme import ClassScheme
from lcgan_qgis.core.rasters.validity import image_valid
from lcgan_qgis.core.storage.files import AtomicFile
from training.evaluation.metrics import accuracy, confusion_matrix, iou_per_class, mean_iou
from training.evaluation.plots import Figure, codes_to_rgb, legend_handles

gdal.UseExceptions()


@dataclass(frozen=True, slots=True)
class Agreement:
    """How far the land cover predicted back matches the input map, over pixels valid in both."""

    pixels: int
    accuracy: float
    miou: float
    iou_per_class: dict[int, float]

    def line(self) -> str:
        return (f"agreement input vs predicted back: accuracy {100 * self.accuracy:.1f} %, mIoU {self.miou:.3f} "
                f"over {self.pixels} px")


def read_bands(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """``(bands, rows, cols)`` pixels and the mask of valid pixels
    (:func:`lcgan_qgis.core.rasters.validity.image_valid`)."""
    try:
        ds = gdal.Open(str(path))
        pixels = ds.ReadAsArray()
        pixels = pixels[None] if pixels.ndim == 2 else pixels
        nodata = [ds.GetRasterBand(b).GetNoDataValue() for b in range(1, ds.RasterCount + 1)]
        valid = image_valid(pixels, nodata)
    except RuntimeError as exc:
        raise InputRasterError(f"Cannot read {path}: {exc}") from None
    finally:
        ds = None
    return pixels, valid


def agreement(input_codes: np.ndarray, predicted_codes: np.ndarray, valid: np.ndarray,
              scheme: ClassScheme) -> Agreement:
    """Accuracy, mIoU and per-class IoU (classes present in the input) of ``predicted_codes`` against the input."""
    true_idx, true_valid = scheme.codes_to_indices(input_codes)
    pred_idx, pred_valid = scheme.codes_to_indices(predicted_codes)
    cm = confusion_matrix(true_idx, pred_idx, len(scheme), valid & true_valid & pred_valid)
    ious = iou_per_class(cm)
    present = cm.sum(axis=1) > 0
    return Agreement(int(cm.sum()), accuracy(cm), mean_iou(cm),
                     {c.code: float(ious[i]) for i, c in enumerate(scheme.classes) if present[i]})


def render(input_lc: str | Path, synthetic_rgb: str | Path, predicted_lc: str | Path, png: str | Path,
           scheme: ClassScheme, title: str = "") -> Agreement:
    """Write the three-panel quicklook PNG and return the agreement it shows."""
    lc, lc_valid = read_bands(input_lc)
    rgb, rgb_valid = read_bands(synthetic_rgb)
    back, back_valid = read_bands(predicted_lc)
    if not (lc.shape[1:] == rgb.shape[1:] == back.shape[1:]):
        raise InputRasterError(
            f"The quicklook needs three rasters on one grid, got {lc.shape[1:]}, {rgb.shape[1:]}, {back.shape[1:]}."
        )
    result = agreement(lc[0], back[0], lc_valid & back_valid, scheme)
    display = rgb[:3].transpose(1, 2, 0).astype(np.uint8, copy=False)
    display = np.where(rgb_valid[..., None], display, 255)
    fig = Figure(figsize=(19, 7.6))
    axes = fig.subplots(1, 3)
    panels = [
        (codes_to_rgb(np.where(lc_valid, lc[0], scheme.nodata_code), scheme), "input land cover (procedural demo)"),
        (display, "synthetic RGB (lcgan:landcover_to_rgb)"),
        (codes_to_rgb(np.where(back_valid, back[0], scheme.nodata_code), scheme),
         "land cover predicted back (lcgan:rgb_to_landcover)"),
    ]
    for ax, (img, label) in zip(axes, panels, strict=True):
        ax.imshow(img, interpolation="nearest")
        ax.set_title(label, fontsize=11)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax, codes, valid in ((axes[0], lc[0], lc_valid), (axes[2], back[0], back_valid)):
        present = set(np.unique(codes[valid]).tolist())
        ax.legend(handles=legend_handles(scheme, present), loc="upper center", bbox_to_anchor=(0.5, -0.02),
                  ncol=2, fontsize=8, frameon=False)
    fig.suptitle(f"{title}{result.line()}", fontsize=12)
    fig.subplots_adjust(left=0.01, right=0.99, top=0.9, bottom=0.2, wspace=0.04)
    with AtomicFile(png) as tmp:
        fig.savefig(tmp, dpi=80)
    return result
