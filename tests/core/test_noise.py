"""Position-keyed noise (the texture input of land cover -> RGB models) and the engine feeding it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lcgan_qgis.core.errors import ContractError
from lcgan_qgis.core.model.contract import ModelContract
from lcgan_qgis.core.model.runtime import load_model
from lcgan_qgis.core.rasters.gdal_io import GdalReader
from lcgan_qgis.core.rasters.raster import Window
from lcgan_qgis.core.run.engine import TranslateOptions, translate
from lcgan_qgis.core.run.noise import position_noise
from lcgan_qgis.core.run.settings import RunSettings, Windowing
from tests.fixtures.onnx_factory import default_contract, write_pointwise
from tests.fixtures.rasters import read_tif, write_tif


def test_noise_depends_only_on_the_position() -> None:
    whole = position_noise(Window(0, 0, 300, 200), 3, seed=5)
    part = position_noise(Window(123, 77, 61, 40), 3, seed=5)
    assert whole.shape == (3, 200, 300) and whole.dtype == np.float32
    assert np.array_equal(whole[:, 77:117, 123:184], part)
    assert not np.array_equal(whole, position_noise(Window(0, 0, 300, 200), 3, seed=6))


def test_noise_is_standard_normal_and_uncorrelated() -> None:
    z = position_noise(Window(1000, 2000, 256, 256), 4, seed=0).astype(np.float64)
    assert abs(z.mean()) < 0.01 and abs(z.std() - 1.0) < 0.01
    assert abs(np.mean(z > 1.96) - 0.025) < 0.003  # a normal tail, not a uniform one
    flat = z.reshape(4, -1)
    assert np.abs(np.corrcoef(flat) - np.eye(4)).max() < 0.02  # channels independent
    assert abs(np.corrcoef(z[0, :, :-1].ravel(), z[0, :, 1:].ravel())[0, 1]) < 0.02  # neighbours independent
    assert abs(np.corrcoef(z[0, :-1].ravel(), z[0, 1:].ravel())[0, 1]) < 0.02


def test_contract_carries_noise_channels_and_refuses_them_on_imagery_models() -> None:
    contract = default_contract("landcover_to_rgb", noise_channels=4, noise_seed=3)
    parsed = ModelContract.from_metadata(contract.to_metadata())
    assert (parsed.noise_channels, parsed.noise_seed, parsed.in_channels) == (4, 3, 18)
    with pytest.raises(ContractError, match="noise"):
        default_contract("rgb_to_landcover", noise_channels=2)
    with pytest.raises(ContractError, match="noise_channels"):
        default_contract("landcover_to_rgb", noise_channels=-1)


def test_engine_feeds_the_same_noise_whatever_the_tiling(tmp_path: Path) -> None:
    """A per-pixel model of one-hot + noise: any tiling gives identical pixels only if the noise is keyed by the
    pixel's position in the whole raster (noise drawn per window would differ in every overlap)."""
    model_path = write_pointwise(tmp_path / "m.onnx", "landcover_to_rgb", noise_channels=4)
    codes = np.array([11, 21, 31, 41, 42, 52, 71, 81], dtype=np.uint8)
    raster = write_tif(tmp_path / "lc.tif", np.random.default_rng(0).choice(codes, (150, 170)))
    outputs = []
    with load_model(model_path, "cpu") as model:
        for window_px, overlap in ((64, 8), (96, 16), (512, 0)):
            out = tmp_path / f"out_{window_px}.tif"
            with GdalReader(raster) as reader:
                windowing = Windowing(window_px=window_px, overlap_px=overlap)
                options = TranslateOptions(settings=RunSettings(windowing=windowing))
                translate(model, reader, out, options)
            outputs.append(read_tif(out))
    assert np.array_equal(outputs[0], outputs[1]) and np.array_equal(outputs[0], outputs[2])
    flat = write_tif(tmp_path / "flat.tif", np.full((150, 170), 42, np.uint8))
    with load_model(model_path, "cpu") as model, GdalReader(flat) as reader:
        translate(model, reader, tmp_path / "flat_out.tif")
    assert read_tif(tmp_path / "flat_out.tif").std() > 5  # one class everywhere, yet texture from the noise
