"""Terrain channels (lcgan_qgis.core.terrain.channels) against values computed by hand, and the contract's terrain
part."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from lcgan_qgis.core.errors import ContractError
from lcgan_qgis.core.model.contract import ModelContract
from lcgan_qgis.core.model.terrain_inputs import (
    TERRAIN_CHANNELS,
    ZION_SUN_AZIMUTH_DEG,
    ZION_SUN_ELEVATION_DEG,
    TerrainInputs,
)
from lcgan_qgis.core.rasters.raster import Window
from lcgan_qgis.core.terrain.channels import (
    ZION_CENTRE_LAT_LON,
    ZION_SCENE_TIME_UTC,
    TerrainDeriver,
    derive,
    elevation_metres,
    solar_position,
)
from tests.fixtures.onnx_factory import default_contract

ALL = TerrainInputs(TERRAIN_CHANNELS, relief_radius_m=60.0, relief_scale_m=50.0)


def whole(z: np.ndarray, inputs: TerrainInputs = ALL, pixel: tuple[float, float] = (30.0, 30.0),
          sun: tuple[float, float] = (ZION_SUN_AZIMUTH_DEG, ZION_SUN_ELEVATION_DEG)) -> np.ndarray:
    """Channels of the whole array (its edges continued as the engine continues them)."""
    deriver = TerrainDeriver(inputs, lambda w: z[w.toslices()], z.shape[1], z.shape[0], pixel, *sun)
    return deriver.channels(Window(0, 0, z.shape[1], z.shape[0]))


def plane(slope_deg: float, aspect_deg: float, shape: tuple[int, int] = (24, 30), dx: float = 30.0,
          dy: float = 20.0, base_m: float = 1500.0) -> np.ndarray:
    """A plane of ``slope_deg`` facing ``aspect_deg`` (the downhill direction, clockwise from north)."""
    rows, cols = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float64)
    east, north = cols * dx, -rows * dy
    downhill = math.tan(math.radians(slope_deg))
    a = math.radians(aspect_deg)
    return base_m - downhill * (math.sin(a) * east + math.cos(a) * north)


@pytest.mark.parametrize("height_m", [0.0, 1234.5, 8000.0])
def test_flat_ground_whatever_its_height(height_m: float) -> None:
    out = whole(np.full((20, 25), height_m))
    assert out.shape == (3, 20, 25) and out.dtype == np.float32
    sun_el = math.radians(ZION_SUN_ELEVATION_DEG)
    np.testing.assert_allclose(out[0], 2 * math.sin(sun_el) - 1, atol=1e-6)  # lit at sin(elevation)
    np.testing.assert_allclose(out[1], -1.0, atol=1e-6)  # no slope
    np.testing.assert_allclose(out[2], 0.0, atol=1e-6)  # neither ridge nor valley


@pytest.mark.parametrize(("slope_deg", "aspect_deg", "sun_az", "sun_el"), [
    (30.0, 270.0, 270.0, 45.0),  # facing the sun
    (20.0, 135.0, 132.3, 57.6),  # a south-east slope under the Zion sun
    (35.0, 0.0, 180.0, 40.0),  # a north slope, sun in the south: self-shadowed
    (10.0, 90.0, 0.0, 30.0),  # an east slope, sun in the north
])
def test_a_plane_of_known_slope_and_aspect(slope_deg: float, aspect_deg: float, sun_az: float,
                                           sun_el: float) -> None:
    out = whole(plane(slope_deg, aspect_deg), pixel=(30.0, 20.0), sun=(sun_az, sun_el))
    s, zenith = math.radians(slope_deg), math.radians(90.0 - sun_el)
    lit = math.cos(zenith) * math.cos(s) + math.sin(zenith) * math.sin(s) * math.cos(math.radians(sun_az - aspect_deg))
    np.testing.assert_allclose(out[0], 2 * max(lit, 0.0) - 1, atol=1e-5)  # Burrough & McDonnell's hillshade
    np.testing.assert_allclose(out[1], 2 * math.sin(s) - 1, atol=1e-5)
    np.testing.assert_allclose(out[2], 0.0, atol=1e-4)  # a plane is its own local mean (to the millimetre)


def test_the_vertical_unit_does_not_change_the_channels() -> None:
    metres = plane(25.0, 200.0)
    feet = np.rint(metres / 0.3048 * 100) / 100  # the same ground in feet (centi-foot precision)
    in_metres = whole(elevation_metres(feet, None, 0.3048), pixel=(30.0, 20.0))
    np.testing.assert_allclose(in_metres, whole(metres, pixel=(30.0, 20.0)), atol=1e-3)
    raw_feet = whole(feet, pixel=(30.0, 20.0))  # read as metres: 3.3x steeper
    assert raw_feet[1].mean() > in_metres[1].mean() + 0.3


def test_relative_elevation_of_a_spike_by_hand() -> None:
    """One pixel 90 m above flat ground, radius 1 px (a 3x3 mean): the spike sits 80 m above its mean (90 / 9 =
    10), its neighbours 10 m below theirs; channel x / sqrt(1 + x^2) with x = height / 50 m."""
    z = np.zeros((9, 9))
    z[4, 4] = 90.0
    inputs = TerrainInputs(("relative_elevation",), relief_radius_m=30.0, relief_scale_m=50.0)
    out = whole(z, inputs)[0]

    def squash(height: float) -> float:
        x = height / 50.0
        return x / math.sqrt(1 + x * x)

    assert out[4, 4] == pytest.approx(squash(80.0), abs=1e-6)
    assert out[3, 4] == pytest.approx(squash(-10.0), abs=1e-6) and out[5, 5] == pytest.approx(squash(-10.0), abs=1e-6)
    assert out[0, 0] == pytest.approx(0.0, abs=1e-9)


def test_channels_are_in_range_and_in_the_order_asked() -> None:
    z = np.random.default_rng(0).normal(0, 200, (40, 50)).cumsum(0).cumsum(1)
    both = whole(z)
    swapped = whole(z, TerrainInputs(("relative_elevation", "hillshade"), relief_radius_m=60.0,
                                     relief_scale_m=50.0))
    assert both.min() >= -1 and both.max() <= 1
    assert np.array_equal(swapped[0], both[2]) and np.array_equal(swapped[1], both[0])


def test_any_window_equals_the_whole_raster_bit_for_bit() -> None:
    """With the halo read around each window and the raster's edges continued, a window's channels are exactly the
    whole raster's at those pixels, wherever the window lies (edges and nodata included)."""
    rng = np.random.default_rng(1)
    z = 1500 + rng.normal(0, 30, (70, 83)).cumsum(0).cumsum(1) / 10
    z[10:14, 20:25] = np.nan
    z[:, -2:] = np.nan
    full = whole(z)
    deriver = TerrainDeriver(ALL, lambda w: z[w.toslices()], 83, 70, (30.0, 30.0), 132.3, 57.6)
    for window in (Window(0, 0, 16, 16), Window(5, 7, 31, 9), Window(60, 50, 23, 20), Window(82, 69, 1, 1),
                   Window(15, 8, 12, 12)):
        rows, cols = window.toslices()
        assert np.array_equal(deriver.channels(window), full[:, rows, cols]), window


def test_nodata_is_flat_terrain() -> None:
    z = plane(30.0, 135.0, dx=30.0, dy=30.0)
    z[5, 5] = np.nan
    out = whole(z)
    flat = whole(np.zeros((3, 3)))[:, 1, 1]
    assert np.array_equal(out[:, 5, 5], flat)
    assert np.isfinite(out).all()
    # a neighbour without elevation counts as the centre's height: the slope next to it is less, never NaN
    assert out[1, 5, 6] < out[1, 10, 10]
    assert np.array_equal(whole(np.full((6, 7), np.nan)), np.broadcast_to(flat[:, None, None], (3, 6, 7)))
    assert np.array_equal(elevation_metres(np.array([[-32768, 1000]], np.int16), -32768.0, 1.0),
                          np.array([[np.nan, 1000.0]]), equal_nan=True)


def test_derive_refuses_a_halo_too_small() -> None:
    with pytest.raises(ValueError, match="halo"):
        derive(np.zeros((10, 10)), 1, (30.0, 30.0), ALL)  # the 60 m relief radius needs 2 px


def test_the_zion_sun_is_the_solar_position_of_the_scene() -> None:
    azimuth, elevation = solar_position(ZION_SCENE_TIME_UTC, *ZION_CENTRE_LAT_LON)
    assert (round(azimuth, 1), round(elevation, 1)) == (ZION_SUN_AZIMUTH_DEG, ZION_SUN_ELEVATION_DEG)
    assert 90 < azimuth < 180  # a morning overpass: the sun in the south-east


def test_solar_noon_at_the_june_solstice() -> None:
    """At 40 N on 2015-06-21 the sun culminates at 90 - 40 + 23.44 = 73.44 degrees, due south (obliquity 23.44)."""
    start = datetime(2015, 6, 21, 11, 0, tzinfo=UTC)
    samples = [solar_position(start + timedelta(minutes=m), 40.0, 0.0) for m in range(0, 120)]
    azimuth, elevation = max(samples, key=lambda s: s[1])
    assert elevation == pytest.approx(73.44, abs=0.02)
    assert azimuth == pytest.approx(180.0, abs=0.5)
    assert solar_position(datetime(2015, 6, 21, 23, 59), 40.0, 0.0)[1] < 0  # night


def test_the_contract_carries_terrain_and_old_models_load_without() -> None:
    terrain = TerrainInputs(("hillshade", "slope"), sun_azimuth_deg=120.0, sun_elevation_deg=40.0,
                            dem_metres_per_unit=0.3048)
    contract = default_contract("landcover_to_rgb", terrain=terrain, noise_channels=2)
    parsed = ModelContract.from_metadata(contract.to_metadata())
    assert parsed.terrain == terrain
    assert (parsed.terrain_channels, parsed.in_channels) == (2, 14 + 2 + 2)
    old = contract.to_dict()
    del old["terrain"]
    assert ModelContract.from_dict(old).terrain is None
    assert ModelContract.from_dict({**old, "terrain": None}).in_channels == 16
    with pytest.raises(ContractError, match="only land cover -> RGB"):
        default_contract("rgb_to_landcover", terrain=terrain)


@pytest.mark.parametrize(("bad", "message"), [
    ({"channels": ["hillshade", "aspect"]}, "terrain.channels"),
    ({"channels": []}, "terrain.channels"),
    ({"channels": ["slope"], "sun_elevation_deg": 95}, "sun_elevation_deg"),
    ({"channels": ["slope"], "sun_azimuth_deg": "south"}, "sun_azimuth_deg"),
    ({"channels": ["slope"], "relief_scale_m": 0}, "relief_scale_m"),
    ({"channels": ["slope"], "shadows": True}, "unknown terrain key"),
    ("hillshade", "JSON object"),
])
def test_malformed_terrain_metadata_is_named(bad: object, message: str) -> None:
    data = default_contract("landcover_to_rgb").to_dict()
    data["terrain"] = bad
    with pytest.raises(ContractError, match=message) as caught:
        ModelContract.from_dict(data, source="m.onnx")
    assert str(caught.value).startswith("m.onnx")


def test_the_description_names_the_relief_parameters_only_where_the_model_reads_relief() -> None:
    lit_only = TerrainInputs(("hillshade",), sun_azimuth_deg=132.3, sun_elevation_deg=57.6).describe()
    assert lit_only == "hillshade from a DEM in metres; sun azimuth 132.3 deg, elevation 57.6 deg"
    full = TerrainInputs(("hillshade", "slope", "relative_elevation"), dem_metres_per_unit=0.3048).describe()
    assert full.startswith("hillshade, slope, relative_elevation from a DEM in feet;")
    assert full.endswith("; relief radius 300 m, scale 50 m")
