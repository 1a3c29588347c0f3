"""``python -m training relight``: the light fitted on controlled inputs (known answer), the ``Relit`` module lighting
its base per pixel, and a real run from a map-only export to a terrain-aware model the plugin's engine runs, whose
pixels are the base's render times the fitted light."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from lcgan_qgis.core.model.contract import Direction
from lcgan_qgis.core.model.runtime import load_model
from lcgan_qgis.core.model.terrain_inputs import TerrainInputs
from tests.fixtures.rasters import GEOTRANSFORM, write_tif
from tests.training.test_finetune_second_gen import tiny  # noqa: F401 (fixture)
from training.errors import TrainingError
from training.evaluation.rasters import read_raster, translate_file
from training.relight import Relit, fit_light, fit_sun, lit_at, relight, terrain_on


def test_fit_light_recovers_a_known_light() -> None:
    rng = np.random.default_rng(0)
    u_map = rng.uniform(0.1, 0.9, (3, 80, 80))
    lit = rng.uniform(0.0, 1.0, (80, 80))
    ambient, direct = np.array([0.2, 0.1, 0.3]), np.array([0.9, 1.1, 0.7])
    u_real = u_map * (ambient[:, None, None] + direct[:, None, None] * lit) + rng.normal(0, 0.002, u_map.shape)
    got_ambient, got_direct = fit_light(u_map, u_real, lit, np.ones((80, 80), bool))
    np.testing.assert_allclose(got_ambient, ambient, atol=0.01)
    np.testing.assert_allclose(got_direct, direct, atol=0.01)


def test_fit_light_refuses_flat_ground_and_too_few_pixels() -> None:
    u = np.full((3, 50, 50), 0.5)
    with pytest.raises(TrainingError, match="flat"):
        fit_light(u, u, np.full((50, 50), 0.8), np.ones((50, 50), bool))
    few = np.zeros((50, 50), bool)
    few[:10, :10] = True
    with pytest.raises(TrainingError, match="100 valid pixels"):
        fit_light(u, u, np.linspace(0, 1, 2500).reshape(50, 50), few)


class _Base(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(6, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.conv(x))


def test_relit_lights_its_base_per_pixel_and_skips_the_hillshade_channel() -> None:
    class Contract:  # the two numbers Relit reads: 4 classes + 2 noise channels -> 3 bands
        num_classes, in_channels, out_channels = 4, 6, 3

    base = _Base().eval()
    model = Relit(base, Contract(), np.array([0.2, 0.3, 0.1]), np.array([0.8, 0.6, 1.0])).eval()
    assert (model.in_channels, model.out_channels) == (7, 3)
    x = torch.rand(2, 7, 16, 16) * 2 - 1
    with torch.no_grad():
        got = model(x)
        t = base(torch.cat([x[:, :4], x[:, 5:]], 1))
    lit = (x[:, 4:5] + 1) / 2
    want = ((t + 1) / 2 * (torch.tensor([0.2, 0.3, 0.1]).view(1, 3, 1, 1)
                           + torch.tensor([0.8, 0.6, 1.0]).view(1, 3, 1, 1) * lit) * 2 - 1).clamp(-1, 1)
    torch.testing.assert_close(got, want)
    x2 = x.clone()
    x2[:, 4] = x[:, 4].flip(-1)  # another hillshade: only the light changes, the surface does not
    with torch.no_grad():
        t2 = base(torch.cat([x2[:, :4], x2[:, 5:]], 1))
    torch.testing.assert_close(t, t2)


def _area(path: Path, cols: tuple[int, int], n: int) -> Path:
    x0, dx, _, y0, _, dy = GEOTRANSFORM
    ring = [[x0 + cols[0] * dx, y0], [x0 + cols[1] * dx, y0], [x0 + cols[1] * dx, y0 + n * dy],
            [x0 + cols[0] * dx, y0 + n * dy], [x0 + cols[0] * dx, y0]]
    crs = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32612"}}
    feature = {"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [ring]}}
    path.write_text(json.dumps({"type": "FeatureCollection", "crs": crs, "features": [feature]}))
    return path


def test_a_relight_run_exports_a_terrain_model_the_engine_runs(tiny: Path, tmp_path: Path) -> None:  # noqa: F811
    n = 160
    rows, cols = np.mgrid[0:n // 2, 0:n // 2].astype(np.float64)
    dem = 1500 + 120 * np.sin(cols / 4.5) + 80 * np.cos(rows / 6.5)  # ridges, on a 60 m grid: a user's coarser DEM
    x0, _, _, y0, _, _ = GEOTRANSFORM
    dem_path = write_tif(tmp_path / "dem.tif", dem.astype(np.float32), nodata=-32768,
                         geotransform=(x0, 60.0, 0.0, y0, 0.0, -60.0))
    codes = np.full((n, n), 52, np.uint8)
    codes[:, n // 3: 2 * n // 3] = 42
    lc_path = write_tif(tmp_path / "lc.tif", codes, nodata=255)
    image_path = write_tif(tmp_path / "image.tif", np.full((3, n, n), 9000, np.uint16), nodata=0)
    deriver, metres, pixel = terrain_on(image_path, dem_path, TerrainInputs(("hillshade",)))  # the engine's DEM path
    assert pixel == (30.0, 30.0) and metres.shape == (n, n) and np.isfinite(metres).all()
    light = lit_at(deriver, 200.0, 40.0)  # the imagery's sun: south-west, 40 degrees
    assert float(light.std()) > 0.08 and float(light.min()) >= 0.0 and float(light.max()) <= 1.0
    colour = {52: (11000.0, 10000.0, 9500.0), 42: (8000.0, 9500.0, 8500.0)}
    surface = np.stack([np.vectorize(lambda c, b=b: colour[int(c)][b])(codes) for b in range(3)])
    image = surface * (0.3 + 0.8 * light) + np.random.default_rng(0).normal(0, 100, (3, n, n))
    image_path = write_tif(tmp_path / "image.tif", image.astype(np.uint16), nodata=0)
    out = tmp_path / "relit"
    report = relight(tiny, image_path, lc_path, dem_path, _area(tmp_path / "train.geojson", (0, 80), n), out,
                     _area(tmp_path / "val.geojson", (80, 160), n), int8=True, sun=(200.0, 40.0))
    assert report["sun"] == {"azimuth_deg": 200.0, "elevation_deg": 40.0, "fitted": False}
    assert report["parity"] < 1e-3 and report["train_pixels"] > 3000
    assert set(report["validation"]) == {"map_only", "relit"} and "file" in report["int8"]
    assert all(report["validation"][k]["peak_index"] > 0 for k in ("map_only", "relit"))
    assert json.loads((out / "relight_report.json").read_text())["light"] == report["light"]
    terrain_model = out / "landcover_to_rgb_terrain.onnx"
    with load_model(terrain_model, "cpu", precision="fp32") as model:
        contract = model.contract
    assert contract.direction is Direction.LANDCOVER_TO_RGB and contract.terrain is not None
    assert contract.terrain.channels == ("hillshade",) and contract.extra["generator"] == "relit"
    assert (contract.terrain.sun_azimuth_deg, contract.terrain.sun_elevation_deg) == (200.0, 40.0)
    assert (out / "landcover_to_rgb_terrain.int8.onnx").is_file()
    assert (out / "landcover_to_rgb_terrain.fidelity.json").is_file()
    translate_file(tiny / "landcover_to_rgb.onnx", lc_path, tmp_path / "base.tif", "cpu", precision="fp32")
    translate_file(terrain_model, lc_path, tmp_path / "lit.tif", "cpu", precision="fp32", elevation_path=dem_path)
    base = read_raster(tmp_path / "base.tif").pixels[:3].astype(np.float64) / 255.0
    got = read_raster(tmp_path / "lit.tif").pixels[:3].astype(np.float64)
    ambient, direct = (np.array(report["light"][k])[:, None, None] for k in ("ambient", "direct"))
    want = np.clip(base * (ambient + direct * light), 0, 1) * 255.0
    unclipped = (base * 255 >= 2) & (base * 255 <= 253) & (got >= 2) & (got <= 253)  # (DN 0 is nodata: 1 is black)
    assert unclipped.mean() > 0.3  # (the tiny random painter saturates much of its output)
    diff = np.abs(got - want)[unclipped]  # uint8 rounding of both renders (the base's scaled by the light), fp16
    assert diff.max() <= 3.0 and diff.mean() <= 0.4, (diff.max(), diff.mean())
    assert np.abs(got - base * 255).mean() > 5.0  # and the light really changed the picture


def test_fit_sun_finds_the_sun_that_lit_the_imagery(tmp_path: Path) -> None:
    n = 120
    rows, cols = np.mgrid[0:n, 0:n].astype(np.float64)
    dem = 1500 + 150 * np.sin(cols / 7.0) * np.cos(rows / 9.0) + 90 * np.sin((rows + cols) / 11.0)
    dem_path = write_tif(tmp_path / "dem.tif", dem.astype(np.float32), nodata=-32768)
    image_path = write_tif(tmp_path / "image.tif", np.full((3, n, n), 9000, np.uint16), nodata=0)
    deriver, _, _ = terrain_on(image_path, dem_path, TerrainInputs(("hillshade",)))
    rng = np.random.default_rng(1)
    u_map = rng.uniform(0.3, 0.7, (3, n, n))
    for sun in ((140.0, 55.0), (235.0, 30.0)):
        u_real = u_map * (0.2 + 0.9 * lit_at(deriver, *sun)) + rng.normal(0, 0.01, u_map.shape)
        azimuth, elevation = fit_sun(u_map, u_real, deriver, np.ones((n, n), bool))
        assert abs((azimuth - sun[0] + 180) % 360 - 180) <= 10 and abs(elevation - sun[1]) <= 10, (azimuth, elevation)
