"""The run-settings records (core/run/settings.py): each checks itself when built, so an invalid one cannot exist;
what needs the model is checked once the model is known (``Windowing.fit``); and the seed, the setting added last,
changes the texture of synthetic imagery but not its layout, whatever the tiling."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal

from lcgan_qgis.core.errors import DeviceError, OptionError
from lcgan_qgis.core.model.runtime import load_model
from lcgan_qgis.core.rasters.gdal_io import GdalReader
from lcgan_qgis.core.run.engine import TranslateOptions, translate
from lcgan_qgis.core.run.job import TranslationRequest, run_translation
from lcgan_qgis.core.run.noise import stream_seed
from lcgan_qgis.core.run.settings import (
    DEFAULT_WINDOW_PX,
    MAX_SEED,
    Execution,
    ImageInput,
    ModelChoice,
    Rendering,
    Resolution,
    RunSettings,
    Terrain,
    Windowing,
)
from tests.fixtures.cli import cli
from tests.fixtures.onnx_factory import default_contract, write_pointwise
from tests.fixtures.rasters import read_tif, write_tif

CODES = np.array([11, 21, 31, 41, 42, 52, 71, 81], dtype=np.uint8)


@pytest.mark.parametrize(("build", "error", "match"), [
    (lambda: Execution(device="tpu"), DeviceError, "Unknown device 'tpu'; choose one of: auto, cpu, cuda"),
    (lambda: Execution(threads=0), OptionError, "threads must be an integer >= 1, got 0"),
    (lambda: Windowing(overlap_px=-1), OptionError, "overlap_px must be an integer >= 0"),
    (lambda: Windowing(batch_size=True), OptionError, "batch_size must be an integer >= 1, got True"),
    (lambda: Windowing(window_px=2.5), OptionError, "window_px must be an integer"),
    (lambda: ImageInput(radiometry_mode="stretch"), OptionError,
     "Unknown radiometry mode 'stretch'; choose one of: percentile, fixed"),
    (lambda: ImageInput(bands=[1, 2, 3]), OptionError, "bands must be a tuple"),
    (lambda: Terrain(sun_azimuth_deg=360.0), OptionError, "sun_azimuth_deg must be in \\[0, 360\\)"),
    (lambda: Terrain(elevation_unit_m=float("nan")), OptionError, "positive number of metres"),
    (lambda: Resolution(gsd_tolerance=0), OptionError, "gsd_tolerance must be a number > 0"),
    (lambda: Rendering(seed=-1), OptionError, "seed must be an integer >= 0"),
    (lambda: Rendering(seed=MAX_SEED + 1), OptionError, "seed must be at most"),
    (lambda: RunSettings(windowing=64), OptionError, "windowing must be a Windowing record"),
    (lambda: ModelChoice(direction="rgb_to_landcover"), OptionError, "direction must be one of"),
])
def test_an_invalid_record_cannot_be_built(build, error, match) -> None:
    with pytest.raises(error, match=match):
        build()


def test_records_are_frozen_and_default_to_the_model_s_choices() -> None:
    settings = RunSettings()
    assert settings.execution == Execution("auto", None, "auto", "auto", None)
    assert (settings.windowing.window_px, settings.image.bands, settings.terrain.elevation_path) == (None, None, None)
    assert settings.resolution.check_gsd and settings.rendering.seed == 0 and settings.aoi_wkt is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.rendering.seed = 3  # type: ignore[misc]


def test_windowing_fits_the_model() -> None:
    contract = default_contract("landcover_to_rgb")
    assert Windowing().fit(contract) == (contract.overlap_px, DEFAULT_WINDOW_PX)
    assert Windowing(window_px=64, overlap_px=8).fit(contract) == (8, 64)
    with pytest.raises(OptionError, match="multiple of the model's size multiple"):
        Windowing(window_px=66).fit(contract)
    with pytest.raises(OptionError, match="less than half of the window"):
        Windowing(window_px=64, overlap_px=32).fit(contract)


def test_a_map_only_model_keeps_the_sun_but_drops_the_dem() -> None:
    terrain = Terrain(elevation_path="dem.tif", sun_azimuth_deg=90.0, elevation_unit_m=0.3048)
    assert terrain.without_elevation() == Terrain(sun_azimuth_deg=90.0, elevation_unit_m=0.3048)


def test_the_noise_stream_is_the_model_s_plus_the_user_s_seed() -> None:
    assert stream_seed(7) == 7 and stream_seed(7, 5) == 12
    assert stream_seed(2**63 - 1, MAX_SEED) == 2**64 - 2  # still a 64-bit key


def _render(model: Path, raster: Path, out: Path, seed: int, window_px: int, overlap_px: int) -> np.ndarray:
    settings = RunSettings(windowing=Windowing(window_px=window_px, overlap_px=overlap_px),
                           rendering=Rendering(seed=seed))
    with load_model(model, "cpu") as loaded, GdalReader(raster) as reader:
        translate(loaded, reader, out, TranslateOptions(settings=settings))
    return read_tif(out)


def test_the_seed_changes_texture_not_layout_whatever_the_tiling(tmp_path: Path) -> None:
    """A per-pixel model of one-hot + noise: the same seed gives identical pixels under any window grid; another
    seed other pixels, yet the same classes stay where they were (only the texture moved)."""
    model = write_pointwise(tmp_path / "m.onnx", "landcover_to_rgb", noise_channels=4)
    codes = np.random.default_rng(0).choice(CODES, (150, 170))
    raster = write_tif(tmp_path / "lc.tif", codes)
    tilings = ((64, 8), (96, 16), (512, 0))
    seven = [_render(model, raster, tmp_path / f"s7_{w}.tif", 7, w, o) for w, o in tilings]
    assert all(np.array_equal(seven[0], other) for other in seven[1:])
    zero = _render(model, raster, tmp_path / "s0.tif", 0, 64, 8)
    eight = _render(model, raster, tmp_path / "s8.tif", 8, 96, 16)
    assert not np.array_equal(seven[0], zero) and not np.array_equal(seven[0], eight)
    for other in (zero, eight):  # the layout: every class keeps its mean colour within the noise's reach
        for code in CODES:
            where = codes == code
            assert np.abs(seven[0][:, where].mean(axis=1) - other[:, where].mean(axis=1)).max() < 8


def test_the_seed_reaches_the_provenance_and_is_ignored_without_noise(tmp_path: Path) -> None:
    raster = write_tif(tmp_path / "lc.tif", np.random.default_rng(1).choice(CODES, (60, 70)))
    noisy = write_pointwise(tmp_path / "noisy.onnx", "landcover_to_rgb", noise_channels=2)
    plain = write_pointwise(tmp_path / "plain.onnx", "landcover_to_rgb")
    seeded = RunSettings(execution=Execution(device="cpu"), rendering=Rendering(seed=42))
    notes: list[str] = []
    with GdalReader(raster) as reader:
        job = run_translation(TranslationRequest(str(tmp_path / "a.tif"), ModelChoice(str(noisy)), seeded), reader)
        run_translation(TranslationRequest(str(tmp_path / "b.tif"), ModelChoice(str(plain)), seeded), reader,
                        note=notes.append)
        unseeded = run_translation(TranslationRequest(str(tmp_path / "c.tif"), ModelChoice(str(noisy))), reader)
    assert job.tags["LCGAN_SEED"] == "42" and gdal.Open(str(tmp_path / "a.tif")).GetMetadataItem("LCGAN_SEED") == "42"
    assert "LCGAN_SEED" not in unseeded.tags
    assert any("no noise channels: the seed 42 changes nothing" in line for line in notes)


def test_the_command_line_takes_a_seed(tmp_path: Path) -> None:
    model = write_pointwise(tmp_path / "m.onnx", "landcover_to_rgb", noise_channels=4)
    raster = write_tif(tmp_path / "lc.tif", np.random.default_rng(2).choice(CODES, (80, 90)))
    runs = {}
    for name, seed, window in (("a", "3", "64"), ("b", "3", "512"), ("c", "4", "64")):
        out = str(tmp_path / f"{name}.tif")
        done = cli("translate", "--model", str(model), "--input", str(raster), "--output", out, "--device", "cpu",
                   "--seed", seed, "--window", window)
        assert done.returncode == 0, done.stderr
        runs[name] = read_tif(tmp_path / f"{name}.tif")
    assert np.array_equal(runs["a"], runs["b"]) and not np.array_equal(runs["a"], runs["c"])
    assert gdal.Open(str(tmp_path / "a.tif")).GetMetadataItem("LCGAN_SEED") == "3"
    bad = cli("translate", "--model", str(model), "--input", str(raster), "--output", str(tmp_path / "d.tif"),
              "--seed", "-2")
    assert bad.returncode == 2 and bad.stderr.strip() == "error: seed must be an integer >= 0, got -2."

