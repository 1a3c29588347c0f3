"""The optional semi-supervised terms: image windows carry their own land cover, aligned through flips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch

from lcgan_qgis.core.errors import InputRasterError
from lcgan_qgis.core.model.scheme import ClassScheme
from lcgan_qgis.core.resources import default_scheme_path
from tests.fixtures.training import tiny_config, write_landcover
from training.data import UnpairedWindows, build_datasets
from training.trainer import Trainer

SCHEME = ClassScheme.load(default_scheme_path())


def _paired_landcover_from_image(data_dir: Path) -> Path:
    """Land cover on the image grid whose class is a function of the image's red band (so alignment is checkable)."""
    with rasterio.open(data_dir / "img.tif") as img:
        red, profile = img.read(1), img.profile
    codes = np.where(red > 12000, 42, 52).astype(np.uint8)
    codes[red == 0] = 255
    profile.update(count=1, dtype="uint8", nodata=255)
    with rasterio.open(data_dir / "paired.tif", "w", **profile) as ds:
        ds.write(codes, 1)
    return data_dir / "paired.tif"


def test_paired_windows_stay_aligned_with_their_image(data_dir: Path) -> None:
    _paired_landcover_from_image(data_dir)
    config = tiny_config("data.paired_landcover=['paired.tif']", "data.rot90=true")
    landcover, images = build_datasets(config, data_dir, SCHEME)
    dataset = UnpairedWindows(landcover, images, length=40, seed=5, rot90=True)
    threshold = images.radiometry.normalize(np.full((3, 1, 1), 12000.0))[0, 0, 0]
    evergreen, shrub = SCHEME.codes.index(42), SCHEME.codes.index(52)
    for i in range(40):
        item = dataset[i]
        red, valid = item["rgb"][0].numpy(), item["paired_valid"].numpy() & item["rgb_valid"].numpy()
        expected = np.where(red > threshold, evergreen, shrub)
        near = np.abs(red - threshold) < 1e-3  # rounding at the threshold itself
        assert np.array_equal(item["paired_index"].numpy()[valid & ~near], expected[valid & ~near])


def test_paired_raster_on_another_grid_is_refused(data_dir: Path) -> None:
    write_landcover(data_dir / "shifted.tif", origin=(300030.0, 4150000.0))
    config = tiny_config("data.paired_landcover=['shifted.tif']")
    with pytest.raises(InputRasterError, match=r"shifted\.tif is not on the grid of the image .*img\.tif"):
        build_datasets(config, data_dir, SCHEME)


def test_paired_count_must_match_the_images(data_dir: Path) -> None:
    _paired_landcover_from_image(data_dir)
    config = tiny_config("data.paired_landcover=['paired.tif', 'paired.tif']")
    with pytest.raises(InputRasterError, match=r"lists 2 raster\(s\) but data.image_rasters lists 1"):
        build_datasets(config, data_dir, SCHEME)


def test_paired_terms_are_logged_and_lower_with_training(data_dir: Path, tmp_path: Path) -> None:
    _paired_landcover_from_image(data_dir)
    config = tiny_config("data.paired_landcover=['paired.tif']", "loss.lambda_paired_lc=5",
                         "loss.lambda_paired_rgb=5", "optim.steps_per_epoch=20", "optim.epochs=1",
                         "optim.epochs_decay=0", "model.ngf=8", "optim.lr=0.002")
    torch.manual_seed(0)
    trainer = Trainer(config, data_dir, tmp_path / "run")
    batches = trainer.loader()
    losses = [trainer.train_step(next(batches)) for _ in range(20)]
    first = np.mean([v["paired_lc_ce"] for v in losses[:4]])
    last = np.mean([v["paired_lc_ce"] for v in losses[-4:]])
    assert all(v["paired_lc_ce"] > 0 and v["paired_rgb_l1"] > 0 for v in losses)
    assert last < first


def test_without_paired_land_cover_the_terms_are_zero(data_dir: Path, tmp_path: Path) -> None:
    trainer = Trainer(tiny_config("loss.lambda_paired_lc=5"), data_dir, tmp_path / "run")
    values = trainer.train_step(next(trainer.loader()))
    assert values["paired_lc_ce"] == 0.0 and values["paired_rgb_l1"] == 0.0
