"""Bad inputs meet precise messages that name the raster and say what to change (issue 7's engine rows)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lcgan_qgis.core.errors import InputRasterError
from lcgan_qgis.core.model.runtime import Model
from lcgan_qgis.core.rasters.gdal_io import GdalReader
from lcgan_qgis.core.run.engine import TranslateOptions, translate
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
