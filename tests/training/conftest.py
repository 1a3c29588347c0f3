"""Fixtures of the training tests: small real GeoTIFFs (land cover + imagery) and a tiny config."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from training.config import TrainConfig

NLCD_CODES = (11, 21, 22, 23, 31, 41, 42, 43, 52, 71, 81, 82, 90, 95)
CRS = "EPSG:32612"


def write_landcover(path: Path, size: int = 96, seed: int = 0, nodata_rows: int = 8, codes: tuple = NLCD_CODES,
                    origin: tuple[float, float] = (300000.0, 4150000.0)) -> Path:
    """Blocky land cover with every NLCD code, the first ``nodata_rows`` rows nodata (255)."""
    rng = np.random.default_rng(seed)
    blocks = rng.choice(np.array(codes, dtype=np.uint8), size=(size // 8, size // 8))
    data = np.kron(blocks, np.ones((8, 8), dtype=np.uint8))
    data[:nodata_rows] = 255
    with rasterio.open(path, "w", driver="GTiff", width=size, height=size, count=1, dtype="uint8", crs=CRS,
                       transform=from_origin(*origin, 30, 30), nodata=255) as ds:
        ds.write(data, 1)
    return path


def write_image(path: Path, size: int = 96, seed: int = 1, nodata_cols: int = 8, dtype: str = "uint16",
                origin: tuple[float, float] = (300000.0, 4150000.0)) -> Path:
    """Smooth 3-band imagery (uint16 5,000-20,000), the first ``nodata_cols`` columns nodata (0)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    bands = [5000 + 15000 * (0.5 + 0.5 * np.sin(6 * xx * (b + 1) + 4 * yy)) + rng.normal(0, 300, (size, size))
             for b in range(3)]
    data = np.clip(np.stack(bands), 1, 65535).astype(dtype)
    data[:, :, :nodata_cols] = 0
    with rasterio.open(path, "w", driver="GTiff", width=size, height=size, count=3, dtype=dtype, crs=CRS,
                       transform=from_origin(*origin, 30, 30), nodata=0) as ds:
        ds.write(data)
    return path


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    write_landcover(folder / "lc.tif")
    write_image(folder / "img.tif")
    return folder


TINY = [
    "model.ngf=4", "model.n_blocks=1", "model.ndf=4", "data.crop_size_px=32", "data.num_workers=0",
    "data.lc_rasters=['lc.tif']", "data.image_rasters=['img.tif']", "data.max_nodata_fraction=0.5",
    "optim.steps_per_epoch=2", "optim.epochs=3", "optim.epochs_decay=2", "loss.pool_size=2",
    "runtime.threads=1", "runtime.progress=false", "runtime.device=cpu",
]


def tiny_config(*overrides: str) -> TrainConfig:
    return TrainConfig.load(None, [*TINY, *overrides])
