"""RGB -> land-cover validation during training, through the plugin's own job (the windows and blending users get).

The torch generator is put behind the core's model interface (:class:`TorchModel`: ``contract``, ``provider``,
``run``) and :func:`lcgan_qgis.core.run.job.run_translation` runs it over the paired validation image exactly as it runs
an exported model: same resolution policy, window grid, overlap, blending, nodata rule and output codes. The result
is scored against the paired land cover (same grid), inside the validation areas when given.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import torch
from rasterio.features import geometry_mask
from torch import nn

from lcgan_qgis.core.errors import InputRasterError
from lcgan_qgis.core.model.contract import Direction, ModelContract
from lcgan_qgis.core.model.scheme import ClassScheme
from lcgan_qgis.core.run.settings import ImageInput, RunSettings

from ..areas import Areas
from .metrics import accuracy, confusion_matrix, iou_per_class, majority_baseline, mean_iou


class TorchModel:
    """A torch generator behind the core engine's model interface (``contract``, ``provider``, ``run``).

    ``run`` evaluates in ``eval()`` mode without gradients and returns what the exported graph would: softmax
    probabilities for land-cover output, the Tanh image otherwise. The generator's mode is restored afterwards.
    """

    provider = "torch"
    backend, precision = "torch", "fp32"  # (what the engine reports as having run)
    notes: tuple[str, ...] = ()
    compile_seconds = 0.0

    def __init__(self, generator: nn.Module, contract: ModelContract, device: torch.device | str = "cpu") -> None:
        self.generator, self.contract, self.device = generator, contract, torch.device(device)
        self.provider_reason = "training validation (torch)"
        self.path = Path(f"{contract.direction.value} generator (torch, step {contract.model_version})")

    @property
    def summary(self) -> str:
        return f"torch on {self.device}"

    @torch.no_grad()
    def run(self, batch: np.ndarray) -> np.ndarray:
        was_training = self.generator.training
        self.generator.eval()
        try:
            x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(self.device)
            y = self.generator(x).float()
            if self.contract.direction is Direction.RGB_TO_LANDCOVER:
                y = y.softmax(dim=1)
            return y.cpu().numpy()
        finally:
            self.generator.train(was_training)


def check_validation_pair(image_path: str | Path, landcover_path: str | Path) -> None:
    """Refuse a validation pair that is not on one grid (the trainer calls it before its first step).

    Raises:
        InputRasterError: a file cannot be opened, or the two rasters differ in size, transform or CRS.
    """
    try:
        with rasterio.open(image_path) as img, rasterio.open(landcover_path) as lcd:
            same = ((img.width, img.height) == (lcd.width, lcd.height) and img.transform == lcd.transform
                    and img.crs == lcd.crs)
    except rasterio.errors.RasterioIOError as exc:
        raise InputRasterError(f"Validation raster cannot be read: {exc}") from None
    if not same:
        raise InputRasterError(f"{image_path} and {landcover_path} are not on the same grid; validation "
                               "needs a paired pair (e.g. nlcd2011_on_landsat_grid.tif).")


def evaluate_rgb2lc(generator: nn.Module, image_path: str | Path, landcover_path: str | Path,
                    contract: ModelContract, bands: list[int], areas: Areas | None = None,
                    device: torch.device | str = "cpu", radiometry_mode: str = "fixed") -> dict[str, Any]:
    """Pixel accuracy, per-class IoU, mIoU and the majority baseline of ``generator`` on a paired raster pair.

    Args:
        generator: the RGB->LC generator (logits).
        image_path, landcover_path: imagery and its land cover on the same grid.
        contract: the model contract the generator would be exported with (scheme, radiometry, tile, overlap).
        bands: 1-based image bands read as the model's bands.
        areas: only pixels whose centres lie inside these polygons count (None: all).
        device: torch device.
        radiometry_mode: ``fixed`` (the training imagery's range, default) or ``percentile``.

    Raises:
        InputRasterError: the rasters are not on one grid.
    """
    from lcgan_qgis.core.rasters.gdal_io import GdalReader
    from lcgan_qgis.core.run.job import TranslationRequest, run_translation

    scheme: ClassScheme = contract.scheme
    check_validation_pair(image_path, landcover_path)
    with rasterio.open(image_path) as img, rasterio.open(landcover_path) as lcd:
        truth, valid = scheme.codes_to_indices(lcd.read(1), nodata=lcd.nodata)
        shape, transform, crs = (img.height, img.width), img.transform, img.crs
    if areas is not None:
        valid &= geometry_mask([areas.in_crs(crs).context], out_shape=shape, transform=transform, invert=True)
    model = TorchModel(generator, contract, device)
    with tempfile.TemporaryDirectory(prefix="lcgan-validate-") as tmp:
        out = Path(tmp) / "prediction.tif"
        request = TranslationRequest(
            str(out),
            settings=RunSettings(image=ImageInput(bands=tuple(bands), radiometry_mode=radiometry_mode)),
            input_path=str(image_path),
        )
        with GdalReader(image_path) as reader:
            run_translation(request, reader, log=lambda _m: None, model=model)
        with rasterio.open(out) as ds:
            predicted_codes, predicted_nodata = ds.read(1), ds.nodata
    prediction, predicted_valid = scheme.codes_to_indices(predicted_codes, nodata=predicted_nodata)
    valid &= predicted_valid
    cm = confusion_matrix(truth, prediction, len(scheme), valid)
    return {
        "accuracy": accuracy(cm),
        "mean_iou": mean_iou(cm),
        "iou_per_class": {str(c): float(v) for c, v in zip(scheme.codes, iou_per_class(cm), strict=True)},
        "baseline": majority_baseline(cm),
        "pixels": int(cm.sum()),
        "confusion_matrix": cm.tolist(),
    }
