"""The procedural demo land-cover map: deterministic, in the scheme, georeferenced, plausibly mixed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal, osr

from lcgan_qgis.core.model.scheme import ClassScheme
from lcgan_qgis.core.resources import default_scheme_path
from tools.demo_input import class_shares, generate_landcover, main, make_demo_input

SCHEME = ClassScheme.load(default_scheme_path())


@pytest.fixture(scope="module")
def demo_codes() -> np.ndarray:
    return generate_landcover(512, seed=3)


def test_same_seed_gives_byte_identical_geotiff(tmp_path: Path) -> None:
    a = make_demo_input(tmp_path / "a.tif", size_px=256, seed=7)
    b = make_demo_input(tmp_path / "b.tif", size_px=256, seed=7)
    c = make_demo_input(tmp_path / "c.tif", size_px=256, seed=8)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()


def test_codes_are_a_subset_of_the_scheme(demo_codes: np.ndarray) -> None:
    assert demo_codes.dtype == np.uint8
    assert set(np.unique(demo_codes).tolist()) <= set(SCHEME.codes)
    SCHEME.codes_to_indices(demo_codes)  # raises on any unknown code


def test_class_proportions_are_plausible(demo_codes: np.ndarray) -> None:
    shares = class_shares(demo_codes, SCHEME)
    assert sum(s > 0 for s in shares.values()) >= 10, shares
    assert shares[42] + shares[52] > 0.55  # the two dominant classes of the Zion sample
    assert shares[42] == max(shares.values())
    for code, low, high in ((52, 0.15, 0.45), (41, 0.05, 0.25), (31, 0.03, 0.12), (11, 0.003, 0.03)):
        assert low < shares[code] < high, (code, shares[code])
    developed = shares[21] + shares[22] + shares[23]
    assert 0.001 < developed < 0.05


def test_patches_are_spatially_coherent(demo_codes: np.ndarray) -> None:
    """Neighbouring pixels mostly share a class (a salt-and-pepper map would not)."""
    same_right = (demo_codes[:, 1:] == demo_codes[:, :-1]).mean()
    same_down = (demo_codes[1:, :] == demo_codes[:-1, :]).mean()
    assert same_right > 0.8 and same_down > 0.8


def test_geotiff_is_georeferenced_with_colour_table(tmp_path: Path) -> None:
    path = make_demo_input(tmp_path / "demo.tif", size_px=128, seed=0)
    ds = gdal.Open(str(path))
    assert (ds.RasterXSize, ds.RasterYSize, ds.RasterCount) == (128, 128, 1)
    gt = ds.GetGeoTransform()
    assert gt[1] == 30.0 and gt[5] == -30.0 and gt[2] == gt[4] == 0.0
    srs = osr.SpatialReference(wkt=ds.GetProjection())
    srs.AutoIdentifyEPSG()
    assert srs.GetAuthorityCode(None) == "32612"
    band = ds.GetRasterBand(1)
    assert band.GetNoDataValue() == SCHEME.nodata_code
    table = band.GetRasterColorTable()
    for cls in SCHEME.classes:
        assert table.GetColorEntry(cls.code) == cls.rgba
        assert band.GetCategoryNames()[cls.code] == cls.name
    np.testing.assert_array_equal(band.ReadAsArray(), generate_landcover(128, seed=0))


def test_rectangular_and_too_small_sizes() -> None:
    assert generate_landcover((64, 200), seed=1).shape == (64, 200)
    with pytest.raises(ValueError, match="at least 32"):
        generate_landcover(16)


def test_cli_writes_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli.tif"
    assert main(["--out", str(out), "--size", "64", "--seed", "2"]) == 0
    assert out.is_file() and "EPSG:32612" in capsys.readouterr().out
