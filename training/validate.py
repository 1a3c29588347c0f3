"""RGB -> land-cover validation on a paired image / land-cover raster (same grid), tile by tile like the engine."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import torch
from torch import nn

from lcgan_qgis.core.contract import Radiometry
from lcgan_qgis.core.errors import InputRasterError
from lcgan_qgis.core.scheme import ClassScheme

from .areas import Areas, window_geometry
from .metrics import accuracy, confusion_matrix, iou_per_class, majority_baseline, mean_iou


def tile_origins(size: int, tile: int) -> list[int]:
    """Offsets of tiles covering ``0..size`` without overlap; the last tile is shifted back to end at ``size``."""
    if size <= tile:
        return [0]
    origins = list(range(0, size - tile + 1, tile))
    if origins[-1] + tile < size:
        origins.append(size - tile)
    return origins


def iter_tiles(width: int, height: int, tile: int) -> Iterator[tuple[int, int]]:
    for row in tile_origins(height, tile):
        for col in tile_origins(width, tile):
            yield col, row


@torch.no_grad()
def predict_landcover(generator: nn.Module, image: np.ndarray, tile_px: int,
                      device: torch.device | str = "cpu") -> np.ndarray:
    """Argmax class indices ``[H, W]`` for a normalised image ``[B, H, W]``, translated tile by tile."""
    bands, height, width = image.shape
    tile = min(tile_px, height - height % 4, width - width % 4)
    out = np.zeros((height, width), dtype=np.int64)
    generator.eval()
    for col, row in iter_tiles(width, height, tile):
        x = torch.from_numpy(np.ascontiguousarray(image[:, row : row + tile, col : col + tile]))[None].to(device)
        out[row : row + tile, col : col + tile] = generator(x.float()).argmax(1)[0].cpu().numpy()
    return out


def evaluate_rgb2lc(generator: nn.Module, image_path: str | Path, landcover_path: str | Path,
                    bands: list[int], radiometry: Radiometry, scheme: ClassScheme, tile_px: int,
                    areas: Areas | None = None, device: torch.device | str = "cpu") -> dict[str, Any]:
    """Pixel accuracy, per-class IoU, mIoU and the majority baseline of ``generator`` on a paired raster pair.

    Only pixels valid in both rasters count; with ``areas``, only pixels of tiles fully inside them.
    """
    with rasterio.open(image_path) as img, rasterio.open(landcover_path) as lcd:
        if (img.width, img.height) != (lcd.width, lcd.height) or img.transform != lcd.transform:
            raise InputRasterError(f"{image_path} and {landcover_path} are not on the same grid; validation "
                                   "needs a paired pair (e.g. nlcd2011_on_landsat_grid.tif).")
        pixels = img.read(bands)
        image_nodata, transform, crs = img.nodata, img.transform, img.crs
        truth, valid = scheme.codes_to_indices(lcd.read(1), nodata=lcd.nodata)
    if image_nodata is not None:
        valid &= ~(pixels == image_nodata).any(axis=0)
    if areas is not None:
        inside = np.zeros_like(valid)
        prepared = areas.in_crs(crs)
        for col, row in iter_tiles(pixels.shape[2], pixels.shape[1], tile_px):
            if prepared.covers(window_geometry(transform, col, row, tile_px, tile_px)):
                inside[row : row + tile_px, col : col + tile_px] = True
        valid &= inside
    prediction = predict_landcover(generator, radiometry.normalize(pixels), tile_px, device)
    cm = confusion_matrix(truth, prediction, len(scheme), valid)
    return {
        "accuracy": accuracy(cm),
        "mean_iou": mean_iou(cm),
        "iou_per_class": {str(c): float(v) for c, v in zip(scheme.codes, iou_per_class(cm), strict=True)},
        "baseline": majority_baseline(cm),
        "pixels": int(cm.sum()),
        "confusion_matrix": cm.tolist(),
    }
