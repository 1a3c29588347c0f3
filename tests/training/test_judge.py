"""The judge, the supervised reference (``training.evaluation.judge``): real training steps, the cache."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from rasterio.transform import from_origin

from lcgan_qgis.core.errors import InputRasterError
from lcgan_qgis.core.model.scheme import ClassScheme
from lcgan_qgis.core.resources import default_scheme_path
from training.evaluation.judge import JudgeConfig, UNet, cached_judge, pooled_features, train_judge

SCHEME = ClassScheme.load(default_scheme_path())
CRS = "EPSG:32612"
COLOURS = {42: (6000, 9000, 7000), 52: (14000, 12000, 9000), 31: (18000, 15000, 14000), 11: (5000, 6000, 11000)}
TINY = JudgeConfig(widths=(8, 16, 32), crop_px=32, batch_size=2, steps=100, lr=1e-2, warmup_steps=5)


def paired_rasters(folder: Path, size: int = 96, seed: int = 0) -> tuple[Path, Path, Path]:
    """Blocky land cover of four classes, imagery that paints each class its colour plus noise, an area file."""
    rng = np.random.default_rng(seed)
    codes = np.kron(rng.choice(np.array(list(COLOURS), np.uint8), size=(size // 8, size // 8)), np.ones((8, 8), int))
    image = np.zeros((3, size, size), np.float64)
    for code, colour in COLOURS.items():
        image[:, codes == code] = np.array(colour, np.float64)[:, None]
    image = np.clip(image + rng.normal(0, 800, image.shape), 1, 65535).astype(np.uint16)
    profile = {"driver": "GTiff", "width": size, "height": size, "crs": CRS,
               "transform": from_origin(300000, 4150000, 30, 30)}
    with rasterio.open(folder / "lc.tif", "w", count=1, dtype="uint8", nodata=255, **profile) as ds:
        ds.write(codes.astype(np.uint8), 1)
    with rasterio.open(folder / "img.tif", "w", count=3, dtype="uint16", nodata=0, **profile) as ds:
        ds.write(image)
    x1, y0 = 300000 + 30 * size, 4150000 - 30 * size
    ring = [[300000, y0], [x1, y0], [x1, 4150000], [300000, 4150000], [300000, y0]]
    (folder / "area.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [ring]}}]}))
    return folder / "img.tif", folder / "lc.tif", folder / "area.geojson"


def test_unet_size_and_features() -> None:
    model = UNet(3, len(SCHEME))
    assert 0.9e6 < sum(p.numel() for p in model.parameters()) < 1.2e6  # "about 1 M parameters"
    logits, deep, top = model.features(torch.zeros(1, 3, 64, 64))
    assert logits.shape == (1, 14, 64, 64) and deep.shape == (1, 192, 8, 8) and top.shape == (1, 24, 64, 64)


def test_pooled_features_average_each_cell() -> None:
    deep = np.arange(2 * 4 * 4, dtype=np.float32).reshape(2, 4, 4)
    top = np.ones((1, 32, 32), np.float32)
    top[0, :16, :16] = 5.0
    features = pooled_features(deep, top, [(0, 0), (16, 16)], bottleneck_scale=8, cell_px=16)
    assert features.shape == (2, 3)
    assert features[0].tolist() == [deep[0, :2, :2].mean(), deep[1, :2, :2].mean(), 5.0]
    assert features[1].tolist() == [deep[0, 2:, 2:].mean(), deep[1, 2:, 2:].mean(), 1.0]


def test_the_judge_trains_for_real_steps_and_reads_the_classes(tmp_path: Path) -> None:
    image, labels, area = paired_rasters(tmp_path)
    judge = train_judge(image, labels, area, SCHEME, TINY)
    curve = judge.info["loss_curve"]
    assert judge.info["steps"] == 100 and judge.info["pixels"] == 100 * 2 * 32 * 32 and curve[-1]["step"] == 100
    assert curve[-1]["loss"] < 0.25 * curve[0]["loss"] and curve[-1]["loss"] < 0.5  # a uniform guess: 2.64 nats
    with rasterio.open(image) as ds, rasterio.open(labels) as lc:
        pixels, codes = ds.read(), lc.read(1)
    predicted, deep, top = judge.maps(judge.normalize(pixels))
    truth, _ = SCHEME.codes_to_indices(codes)
    assert (predicted == truth).mean() > 0.95
    assert deep.shape == (32, 24, 24) and top.shape == (8, 96, 96)
    again = train_judge(image, labels, area, SCHEME, TINY)  # deterministic
    assert again.info["loss_curve"] == curve


def test_the_cache_reuses_a_judge_and_retrains_on_a_change(tmp_path: Path) -> None:
    image, labels, area = paired_rasters(tmp_path)
    config = JudgeConfig(widths=(8, 16), crop_px=32, batch_size=1, steps=3, warmup_steps=1)
    first = cached_judge(image, labels, area, SCHEME, config, cache_dir=tmp_path / "cache")
    second = cached_judge(image, labels, area, SCHEME, config, cache_dir=tmp_path / "cache")
    assert not first.info["cache"]["reused"] and second.info["cache"]["reused"]
    assert second.info["cache"]["path"] == first.info["cache"]["path"]
    for a, b in zip(first.model.state_dict().values(), second.model.state_dict().values(), strict=True):
        assert np.array_equal(a.numpy(), b.numpy())
    assert second.radiometry == first.radiometry and second.config == config
    longer = cached_judge(image, labels, area, SCHEME, JudgeConfig(**{**config.__dict__, "steps": 4}),
                          cache_dir=tmp_path / "cache")
    assert not longer.info["cache"]["reused"] and longer.info["cache"]["digest"] != first.info["cache"]["digest"]
    with rasterio.open(labels, "r+") as ds:  # other labels, same file name: retrains
        ds.write(np.full((96, 96), 42, np.uint8), 1)
    relabelled = cached_judge(image, labels, area, SCHEME, config, cache_dir=tmp_path / "cache")
    assert not relabelled.info["cache"]["reused"]
    assert len(list((tmp_path / "cache").glob("judge-*.pt"))) == 3
    with pytest.raises(InputRasterError, match="absent.tif"):
        cached_judge(tmp_path / "absent.tif", labels, area, SCHEME, config, cache_dir=tmp_path / "cache")
