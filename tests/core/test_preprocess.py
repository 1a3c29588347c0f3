"""Bad inputs meet precise messages that name the raster and say what to change (issue 7's engine rows)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lcgan_qgis.core.errors import InputRasterError
from lcgan_qgis.core.model.runtime import Model
from lcgan_qgis.core.model.scheme import NLCD_LEGEND, unseen_code_substitutes
from lcgan_qgis.core.rasters.gdal_io import GdalReader
from lcgan_qgis.core.rasters.raster import Window
from lcgan_qgis.core.run.engine import TranslateOptions, translate
from lcgan_qgis.core.run.noise import _GOLDEN, CHUNK_ROWS, _mix, _uniform, position_noise, stream_seed
from lcgan_qgis.core.run.preprocess import landcover_to_onehot
from lcgan_qgis.core.run.settings import ImageInput, RunSettings
from tests.fixtures.landcover import imagery, landcover
from tests.fixtures.rasters import ArrayReader, read_tif, write_tif

LANDCOVER_CASES = [
    ("float land cover", lambda: landcover().astype(np.float32), None, "is float32, but land cover must be integer"),
    ("RGB given as land cover", lambda: imagery(), None, "has 3 bands, but land cover is one band"),
    ("all nodata", lambda: np.full((30, 30), 255, np.uint8), None, "every pixel is nodata"),
    ("all raster nodata", lambda: np.zeros((30, 30), np.uint8), 0, "every pixel is nodata"),
]


@pytest.mark.parametrize(("case", "make", "nodata", "match"), LANDCOVER_CASES, ids=[c[0] for c in LANDCOVER_CASES])
def test_bad_landcover(rgb_model: Model, tmp_path: Path, case: str, make, nodata, match: str) -> None:
    src = write_tif(tmp_path / "bad lc.tif", make(), nodata=nodata)
    with GdalReader(src) as reader, pytest.raises(InputRasterError, match=match) as info:
        translate(rgb_model, reader, tmp_path / "out.tif")
    assert str(src) in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad lc.tif"]


def test_unknown_codes_are_listed_with_counts(rgb_model: Model, tmp_path: Path) -> None:
    """Codes outside the scheme and outside the NLCD legend (an NLCD code the model never saw is read as its
    group's nearest code instead: core/model/scheme.py::unseen_code_substitutes)."""
    codes = landcover(60, 60)
    codes[0, :7] = 13
    codes[1, :3] = 200
    with pytest.raises(InputRasterError, match=r"2 value\(s\) are not codes .*13 \(7 px\), 200 \(3 px\)"):
        translate(rgb_model, ArrayReader(codes), tmp_path / "out.tif")
    assert list(tmp_path.iterdir()) == []


def test_landcover_without_nodata_value_uses_the_scheme_nodata(rgb_model: Model, tmp_path: Path) -> None:
    codes = landcover(20, 20)
    codes[:2] = 255
    translate(rgb_model, ArrayReader(codes), tmp_path / "o.tif")
    assert (read_tif(tmp_path / "o.tif")[:, :2] == 0).all()


IMAGERY_CASES = [
    ("1 band, no mapping", dict(bands=1), None, "has 1 band\\(s\\), but the model needs 3 \\(red, green, blue\\)"),
    ("mapping past the band count", dict(bands=3), (1, 2, 5), "names band\\(s\\) \\[5\\], but the raster has 3"),
    ("mapping of the wrong length", dict(bands=4), (1, 2), "has 2 entries; the model needs 3"),
    ("all-zero imagery, percentile", dict(zero=True), None, "no contrast"),
]


@pytest.mark.parametrize(("case", "kind", "bands", "match"), IMAGERY_CASES, ids=[c[0] for c in IMAGERY_CASES])
def test_bad_imagery(lc_model: Model, tmp_path: Path, case: str, kind: dict, bands, match: str) -> None:
    pixels = imagery(bands=kind.get("bands", 3))
    if kind.get("zero"):
        pixels[:] = 0
    src = write_tif(tmp_path / "img.tif", pixels)
    options = TranslateOptions(settings=RunSettings(image=ImageInput(bands=bands, radiometry_mode="percentile")))
    with GdalReader(src) as reader, pytest.raises(InputRasterError, match=match) as info:
        translate(lc_model, reader, tmp_path / "out.tif", options)
    assert str(src) in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["img.tif"]


def test_all_nodata_imagery(lc_model: Model, tmp_path: Path) -> None:
    with pytest.raises(InputRasterError, match="every pixel is nodata"):
        translate(lc_model, ArrayReader(np.zeros((3, 30, 30), np.uint16), nodata=0), tmp_path / "o.tif")


def test_rotated_geotransform(lc_model: Model, tmp_path: Path) -> None:
    reader = ArrayReader(imagery(), geotransform=(0.0, 30.0, 5.0, 0.0, 5.0, -30.0))
    with pytest.raises(InputRasterError, match="rotated or sheared"):
        translate(lc_model, reader, tmp_path / "o.tif")


@pytest.mark.parametrize("bands", [1, 4])
def test_band_mappings_make_one_and_four_band_rasters_work(lc_model: Model, tmp_path: Path, bands: int) -> None:
    pixels = imagery(bands=bands)
    mapping = (1, 1, 1) if bands == 1 else (3, 2, 1)
    options = TranslateOptions(settings=RunSettings(image=ImageInput(bands=mapping)))
    result = translate(lc_model, ArrayReader(pixels), tmp_path / "o.tif", options)
    assert read_tif(tmp_path / "o.tif").shape == (1, 40, 50) and not result.canceled


def test_four_bands_without_mapping_use_the_first_three_and_say_so(lc_model: Model, tmp_path: Path) -> None:
    result = translate(lc_model, ArrayReader(imagery(bands=4)), tmp_path / "o.tif")
    assert any("using bands 1,2,3" in m for m in result.messages)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.float32])
def test_percentile_radiometry_makes_any_pixel_type_equivalent(lc_model: Model, tmp_path: Path, dtype: type) -> None:
    """The same scene scaled into uint8, uint16 or float gives the same classes under 'percentile'."""
    base = np.random.default_rng(1).random((3, 60, 60))
    scale = {np.uint8: 250, np.uint16: 60000, np.int16: 30000, np.float32: 1.0}[dtype]
    ref = (base * 60000).astype(np.uint16)
    pixels = (base * scale).astype(dtype)
    options = TranslateOptions(settings=RunSettings(image=ImageInput(radiometry_mode="percentile")))
    translate(lc_model, ArrayReader(ref), tmp_path / "ref.tif", options)
    translate(lc_model, ArrayReader(pixels), tmp_path / "o.tif", options)
    agree = (read_tif(tmp_path / "ref.tif") == read_tif(tmp_path / "o.tif")).mean()
    assert agree > (0.97 if dtype == np.uint8 else 0.995)


def test_eight_bit_with_fixed_landsat_radiometry_gets_advice(lc_model: Model, tmp_path: Path) -> None:
    result = translate(lc_model, ArrayReader(imagery(dtype=np.uint8) % 250), tmp_path / "o.tif",
                       TranslateOptions(settings=RunSettings(image=ImageInput(radiometry_mode="fixed"))))
    assert any("8-bit" in m and "percentile" in m for m in result.messages)


def test_float_nan_is_nodata(lc_model: Model, tmp_path: Path) -> None:
    pixels = imagery(dtype=np.float32)
    pixels[1, 5, 5] = np.nan
    translate(lc_model, ArrayReader(pixels), tmp_path / "o.tif")
    out = read_tif(tmp_path / "o.tif")[0]
    assert out[5, 5] == 255 and (out != 255).sum() == out.size - 1


def test_missing_and_unreadable_input(tmp_path: Path) -> None:
    with pytest.raises(InputRasterError, match="not found"):
        GdalReader(tmp_path / "none.tif")
    (tmp_path / "text.tif").write_text("not a raster")
    with pytest.raises(InputRasterError, match="Cannot open .*text.tif as a raster"):
        GdalReader(tmp_path / "text.tif")


def _onehot_by_the_scheme(scheme, codes: np.ndarray, nodata: float | None) -> tuple[np.ndarray, np.ndarray]:
    """The one-hot map from ``scheme.codes_to_indices`` (what the engine built before its lookup table)."""
    indices, valid = scheme.codes_to_indices(codes, nodata)
    onehot = (indices[None] == np.arange(len(scheme))[:, None, None]).astype(np.float32)
    onehot[:, ~valid] = 1.0 / len(scheme)
    return onehot, valid


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16])
@pytest.mark.parametrize("nodata", [None, 255.0, 11.0, 3.5, float("nan"), -1.0])
def test_onehot_lookup_follows_the_scheme(rgb_model: Model, dtype: type, nodata: float | None) -> None:
    """Class codes, the scheme's nodata code, the raster's nodata value (also one that is a class code, or no code
    at all) and NLCD codes the model never saw (read as their group's nearest code) map as the scheme says."""
    scheme = rgb_model.contract.scheme
    unseen = unseen_code_substitutes(scheme, NLCD_LEGEND)
    assert unseen  # (the test scheme lacks some NLCD codes: 12, 24, 51 ...)
    values = [*scheme.codes, scheme.nodata_code, *unseen]
    codes = np.random.default_rng(3).choice(values, (23, 29)).astype(dtype)
    got, valid = landcover_to_onehot(rgb_model.contract, codes, nodata, "map.tif")
    want, want_valid = _onehot_by_the_scheme(scheme, codes, nodata)
    assert np.array_equal(valid, want_valid) and (~valid).any() and valid.any()
    assert got.dtype == np.float32 and np.array_equal(got, want)


def test_onehot_lookup_still_names_unknown_codes(rgb_model: Model) -> None:
    codes = landcover(10, 10)
    codes[0, :4] = 200
    with pytest.raises(InputRasterError, match=r"map.tif: 1 value\(s\) are not codes .*200 \(4 px\)"):
        landcover_to_onehot(rgb_model.contract, codes, None, "map.tif")


def test_noise_in_blocks_is_the_whole_window_formula() -> None:
    """position_noise works on blocks of CHUNK_ROWS rows, in place: the values are those of the splitmix64 +
    Box-Muller formula over the whole window, bit for bit, written into the buffer it is given."""
    window = Window(1000, 2**20 + 3, 37, 2 * CHUNK_ROWS + 5)
    seed = stream_seed(7, 2**40)
    rows = np.arange(window.row_off, window.row_end, dtype=np.uint64)
    cols = np.arange(window.col_off, window.col_end, dtype=np.uint64)
    chans = np.arange(3, dtype=np.uint64)
    with np.errstate(over="ignore"):
        base = _mix(np.uint64(seed) * _GOLDEN + np.uint64(1))
        keys = _mix((_mix(base ^ chans[:, None, None]) ^ (rows[None, :, None] << np.uint64(32))) + cols[None, None, :])
        want = (np.sqrt(-2.0 * np.log(_uniform(keys, 1))) * np.cos(2.0 * np.pi * _uniform(keys, 2))).astype(np.float32)
    buffer = np.full((5, window.height, window.width), np.nan, np.float32)
    position_noise(window, 3, seed, out=buffer[1:4])
    assert np.array_equal(buffer[1:4].view(np.uint32), want.view(np.uint32))
    assert np.isnan(buffer[[0, 4]]).all()
    assert np.array_equal(position_noise(window, 3, seed), want)
