"""Terrain-aware training: the DEM on every raster's grid, terrain channels in the batches and the model step,
a real run with elevation that exports and runs in the engine with a DEM."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import rasterio
import torch
from rasterio.transform import from_origin

from lcgan_qgis.core.model.contract import Direction, ModelContract
from lcgan_qgis.core.model.runtime import load_model
from lcgan_qgis.core.model.scheme import ClassScheme
from lcgan_qgis.core.rasters.gdal_io import GdalReader
from lcgan_qgis.core.rasters.raster import Window
from lcgan_qgis.core.resources import default_scheme_path
from lcgan_qgis.core.run.engine import TranslateOptions, translate
from lcgan_qgis.core.terrain.elevation import ElevationReader, plan_terrain
from tests.fixtures.training import TERRAIN, tiny_config, write_dem, write_landcover
from training import data as data_mod
from training.config import ConfigError, TrainConfig
from training.export import export_checkpoint
from training.trainer import Trainer

REPO = Path(__file__).resolve().parents[2]
SCHEME = ClassScheme.load(default_scheme_path())


@pytest.fixture
def terrain_dir(data_dir: Path) -> Path:
    write_dem(data_dir / "dem.tif")
    return data_dir


def test_training_windows_carry_the_engine_s_terrain_channels(terrain_dir: Path) -> None:
    """The channels of a training window are exactly those the engine derives for that window at inference."""
    config = tiny_config(*TERRAIN)
    landcover, images = data_mod.build_datasets(config, terrain_dir, SCHEME)
    for reader in (landcover, images):
        source = reader.sources[0]
        window = rasterio.windows.Window(20, 30, 32, 32)
        got = reader.terrain.channels(source, window)
        with ElevationReader(terrain_dir / "dem.tif", source.grid_info()) as elevation:
            deriver, _ = plan_terrain(config.terrain_inputs(), elevation, source.grid_info())
            want = deriver.channels(Window(20, 30, 32, 32))
        assert got.shape == (3, 32, 32) and np.array_equal(got, want)
        assert got[1].std() > 0.01  # hills, not flat ground
    item = data_mod.UnpairedWindows(landcover, images, 4, seed=0, rot90=True)[1]
    assert item["lc_terrain"].shape == (3, 32, 32) and item["rgb_terrain"].shape == (3, 32, 32)
    assert item["lc_terrain"].dtype == torch.float32 and float(item["lc_terrain"].abs().max()) <= 1.0


def test_a_map_only_config_samples_the_same_windows_as_before(terrain_dir: Path) -> None:
    """Adding the DEM code path changes nothing for map-only runs: same windows, no terrain keys."""
    landcover, images = data_mod.build_datasets(tiny_config(), terrain_dir, SCHEME)
    item = data_mod.UnpairedWindows(landcover, images, 4, seed=0)[2]
    assert "lc_terrain" not in item and "rgb_terrain" not in item
    assert landcover.terrain is None and len(landcover.sample(np.random.default_rng(0))) == 2


@pytest.mark.parametrize(("overrides", "message"), [
    (["model.terrain_channels=['slope']"], "go together"),
    (["data.dem_raster=dem.tif"], "go together"),
    (["model.terrain_channels=['aspect']", "data.dem_raster=dem.tif"], "model.terrain_channels must be"),
    (["model.terrain_channels=['slope']", "data.dem_raster=dem.tif", "model.sun_azimuth_deg=400"],
     "model.sun_azimuth_deg"),
    (["model.terrain_channels=['slope']", "data.dem_raster=dem.tif", "data.dem_metres_per_unit=-1"],
     "data.dem_metres_per_unit"),
])
def test_terrain_config_errors_name_the_key(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        tiny_config(*overrides)


def test_a_dem_beside_the_rasters_is_refused(data_dir: Path) -> None:
    with rasterio.open(data_dir / "dem.tif", "w", driver="GTiff", width=50, height=50, count=1, dtype="float32",
                       crs="EPSG:32612", transform=from_origin(500000.0, 4150000.0, 30, 30)) as ds:
        ds.write(np.ones((1, 50, 50), np.float32))
    with pytest.raises(data_mod.InputRasterError, match="has no elevation on the area of"):
        data_mod.build_datasets(tiny_config(*TERRAIN), data_dir, SCHEME)


def test_terrain_training_run_exports_and_runs_in_the_engine(terrain_dir: Path, tmp_path: Path) -> None:
    """Real optimizer steps with elevation; the exported model carries the terrain contract, needs the DEM in the
    engine, and paints differently over other relief."""
    config = tiny_config(*TERRAIN, "runtime.max_steps=4", "loss.lambda_paired_rgb=1.0",
                         "data.paired_landcover=['lc_paired.tif']")
    write_landcover(terrain_dir / "lc_paired.tif", nodata_rows=0)  # on the image grid (same size and origin)
    trainer = Trainer(config, terrain_dir, tmp_path / "run")
    g = trainer.nets["g_lc2rgb"]
    first = next(m for m in g.modules() if isinstance(m, torch.nn.Conv2d))
    assert first.in_channels == 14 + 3
    before = first.weight.detach()[:, 14:17].clone()
    trainer.fit()
    assert trainer.step == 4
    assert not torch.equal(before, first.weight.detach()[:, 14:17])  # the terrain inputs were learnt from
    assert (tmp_path / "run" / "samples" / "epoch_0001.png").is_file()

    results = export_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt", tmp_path / "onnx")
    assert max(results.values()) < 1e-3
    model_path = tmp_path / "onnx" / "landcover_to_rgb.onnx"
    session = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    contract = ModelContract.from_metadata(session.get_modelmeta().custom_metadata_map)
    assert contract.terrain == config.terrain_inputs() and contract.in_channels == 17
    rgb2lc = ModelContract.from_metadata(ort.InferenceSession(
        str(tmp_path / "onnx" / "rgb_to_landcover.onnx"), providers=["CPUExecutionProvider"]
    ).get_modelmeta().custom_metadata_map)
    assert rgb2lc.terrain is None

    outputs = {}
    flat = tmp_path / "flat.tif"
    with rasterio.open(terrain_dir / "dem.tif") as ds:
        profile = ds.profile
    with rasterio.open(flat, "w", **profile) as ds:
        ds.write(np.full((1, profile["height"], profile["width"]), 1500, np.int16))
    with load_model(model_path, "cpu") as model:
        for name, dem in (("hills", terrain_dir / "dem.tif"), ("flat", flat)):
            with GdalReader(terrain_dir / "lc.tif") as reader, ElevationReader(dem, reader.info) as elevation:
                result = translate(model, reader, tmp_path / f"{name}_rgb.tif", TranslateOptions(),
                                   elevation=elevation)  # (not flat.tif: no output may replace the DEM it reads)
            assert result.tiles >= 1
            with rasterio.open(tmp_path / f"{name}_rgb.tif") as ds:
                outputs[name] = ds.read().astype(int)
        with GdalReader(terrain_dir / "lc.tif") as reader, pytest.raises(data_mod.InputRasterError,
                                                                         match="needs an elevation raster"):
            translate(model, reader, tmp_path / "none.tif")
    assert np.abs(outputs["hills"] - outputs["flat"]).mean() > 0.5
    assert contract.direction is Direction.LANDCOVER_TO_RGB


def test_the_zion_terrain_recipe_builds_on_the_real_rasters(zion_dir: Path) -> None:
    """training/configs/zion_terrain.toml: SRTM (on the Landsat grid) onto NLCD's own grid (EPSG:26912) and the
    Landsat grid; windows come with terrain."""
    if not (zion_dir / "srtm_on_landsat_grid.tif").is_file():
        pytest.skip(f"the Zion SRTM raster is absent ({zion_dir})")
    config = TrainConfig.load(REPO / "training" / "configs" / "zion_terrain.toml")
    bundled = TrainConfig.load(REPO / "training" / "configs" / "zion_bundled.toml")
    terrain_keys = {"terrain_channels", "sun_azimuth_deg", "sun_elevation_deg", "relief_radius_m", "relief_scale_m",
                    "dem_raster", "dem_metres_per_unit"}
    mine, theirs = config.to_dict(), bundled.to_dict()
    for section in mine:  # the bundled recipe key for key, plus elevation
        differ = {k for k in mine[section] if mine[section][k] != theirs[section][k]}
        assert differ <= terrain_keys, (section, differ)
    assert config.terrain_inputs() is not None and config.data.dem_raster == "srtm_on_landsat_grid.tif"
    landcover, images = data_mod.build_datasets(config, zion_dir, SCHEME)
    rng = np.random.default_rng(0)
    indices, valid, terrain = landcover.sample(rng)
    assert terrain.shape == (3, 128, 128) and indices.shape == (128, 128)
    pixels, _valid, _paired_index, _paired_valid, image_terrain = images.sample(rng)
    assert image_terrain.shape == (3, 128, 128)
    assert terrain[1].std() > 0.05 and image_terrain[1].std() > 0.05  # Zion's slopes
