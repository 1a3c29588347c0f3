"""The engine end to end with real onnxruntime sessions and real GeoTIFFs.

Per-pixel models make the tiled, blended result equal to running the model on the whole raster at once, for any
raster size, window and overlap: that is what these tests assert (hypothesis picks the sizes).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from osgeo import gdal

from lcgan_qgis.core.errors import InputRasterError, OptionError, OutputError
from lcgan_qgis.core.model.contract import Direction, to_uint8
from lcgan_qgis.core.model.runtime import Model
from lcgan_qgis.core.rasters.gdal_io import GdalReader
from lcgan_qgis.core.rasters.raster import Window
from lcgan_qgis.core.run.engine import TranslateOptions, translate
from lcgan_qgis.core.run.settings import RunSettings, Windowing
from lcgan_qgis.core.storage.files import PARTIAL_MARK
from tests.fixtures.rasters import GEOTRANSFORM, ArrayReader, read_tif, write_tif

CODES = np.array([11, 21, 22, 23, 31, 41, 42, 43, 52, 71, 81, 82, 90, 95], dtype=np.uint8)



def untiled(model: Model, x: np.ndarray) -> np.ndarray:
    """The model on the whole ``(C, h, w)`` input at once (padded by edge values to a multiple of 4)."""
    h, w = x.shape[1:]
    padded = np.pad(x, ((0, 0), (0, -h % 4), (0, -w % 4)), mode="edge")
    return model.session.run(["output"], {"input": padded[None].astype(np.float32)})[0][0, :, :h, :w]


def image(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    return rng.integers(5000, 20000, (3, h, w)).astype(np.uint16)


def expected_landcover(model: Model, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    probs = untiled(model, model.contract.radiometry.normalize(pixels))
    return CODES[probs.argmax(0)], probs.max(0)


def no_partial_files(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if PARTIAL_MARK in p.name or "partial" in p.name]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(h=st.integers(1, 300), w=st.integers(1, 300), window=st.sampled_from([16, 32, 64, 100, 128]),
       data=st.data())
def test_tiled_landcover_equals_untiled(lc_model: Model, tmp_path: Path, h: int, w: int, window: int,
                                        data: st.DataObject) -> None:
    overlap = data.draw(st.integers(0, (window - 1) // 2))
    batch = data.draw(st.integers(1, 3))
    pixels = image(np.random.default_rng(h * 1000 + w), h, w)
    out, conf = tmp_path / f"lc_{h}_{w}_{window}.tif", tmp_path / f"conf_{h}_{w}_{window}.tif"
    options = TranslateOptions(
        settings=RunSettings(windowing=Windowing(overlap_px=overlap, window_px=window, batch_size=batch)),
        confidence_path=str(conf),
    )
    result = translate(lc_model, ArrayReader(pixels), out, options)
    codes, max_prob = expected_landcover(lc_model, pixels)
    np.testing.assert_array_equal(read_tif(out)[0], codes)
    np.testing.assert_allclose(read_tif(conf)[0], max_prob, atol=2e-6)
    assert result.tiles >= 1 and not result.canceled


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(h=st.integers(1, 260), w=st.integers(1, 260), window=st.sampled_from([16, 40, 64]), overlap=st.integers(0, 7))
def test_tiled_imagery_equals_untiled(rgb_model: Model, tmp_path: Path, h: int, w: int, window: int,
                                      overlap: int) -> None:
    rng = np.random.default_rng(h * 7 + w)
    codes = CODES[rng.integers(0, 14, (h, w))]
    out = tmp_path / f"rgb_{h}_{w}_{window}_{overlap}.tif"
    options = TranslateOptions(settings=RunSettings(windowing=Windowing(overlap_px=overlap, window_px=window)))
    translate(rgb_model, ArrayReader(codes), out, options)
    onehot = (np.searchsorted(CODES, codes)[None] == np.arange(14)[:, None, None]).astype(np.float32)
    expected = np.maximum(to_uint8(untiled(rgb_model, onehot)), 1)
    got = read_tif(out)
    assert np.abs(got.astype(int) - expected).max() <= 1  # float rounding at a .5 boundary at most
    assert (got == expected).mean() > 0.999


@pytest.mark.parametrize("shape", [(1, 1), (10, 3000), (3000, 10), (63, 65)])
def test_tall_wide_and_tiny_rasters_through_gdal(lc_model: Model, tmp_path: Path, shape: tuple[int, int]) -> None:
    pixels = image(np.random.default_rng(1), *shape)
    src = write_tif(tmp_path / "in.tif", pixels)
    with GdalReader(src) as reader:
        options = TranslateOptions(settings=RunSettings(windowing=Windowing(window_px=64)))
        translate(lc_model, reader, tmp_path / "out.tif", options)
    np.testing.assert_array_equal(read_tif(tmp_path / "out.tif")[0], expected_landcover(lc_model, pixels)[0])


def test_georeference_colours_and_nodata_are_kept(lc_model: Model, tmp_path: Path) -> None:
    pixels = image(np.random.default_rng(2), 90, 120)
    pixels[:, 10:20, 30:70] = 0  # nodata on every band
    pixels[0, 50, 50] = 0  # one band at nodata: the pixel has no data (core/rasters/validity.py says why)
    src = write_tif(tmp_path / "in.tif", pixels, nodata=0)
    with GdalReader(src) as reader:
        options = TranslateOptions(settings=RunSettings(windowing=Windowing(window_px=32, overlap_px=6)))
        translate(lc_model, reader, tmp_path / "out.tif", options)
    out = gdal.Open(str(tmp_path / "out.tif"))
    ref = gdal.Open(str(src))
    assert out.GetGeoTransform() == ref.GetGeoTransform() == GEOTRANSFORM
    assert out.GetProjection() == ref.GetProjection()
    band = out.GetRasterBand(1)
    assert band.GetNoDataValue() == 255 and band.DataType == gdal.GDT_Byte
    assert band.GetColorTable().GetColorEntry(42)[:3] == (0x1C, 0x5F, 0x2C)
    assert band.GetCategoryNames()[42] == "Evergreen Forest"
    assert out.GetMetadata("IMAGE_STRUCTURE").get("COMPRESSION") == "DEFLATE" and band.GetBlockSize() == [256, 256]
    codes = band.ReadAsArray()
    assert (codes[10:20, 30:70] == 255).all() and codes[50, 50] == 255
    assert (codes != 255).sum() == 90 * 120 - 401


def test_landcover_nodata_stays_nodata_in_imagery(rgb_model: Model, tmp_path: Path) -> None:
    codes = CODES[np.random.default_rng(3).integers(0, 14, (70, 80))]
    codes[:5] = 255
    codes[40, 40] = 0  # the raster's own nodata value
    out = tmp_path / "rgb.tif"
    options = TranslateOptions(settings=RunSettings(windowing=Windowing(window_px=32)))
    translate(rgb_model, ArrayReader(codes, nodata=0), out, options)
    rgb = read_tif(out)
    assert (rgb[:, :5] == 0).all() and (rgb[:, 40, 40] == 0).all()
    valid = np.ones((70, 80), bool)
    valid[:5] = False
    valid[40, 40] = False
    assert (rgb[:, valid] >= 1).all()
    ds = gdal.Open(str(out))
    assert [ds.GetRasterBand(b).GetColorInterpretation() for b in (1, 2, 3)] == [
        gdal.GCI_RedBand, gdal.GCI_GreenBand, gdal.GCI_BlueBand]


def test_cancel_leaves_no_file_and_stops_early(lc_model: Model, tmp_path: Path) -> None:
    reader = ArrayReader(image(np.random.default_rng(4), 200, 200))
    polls = []

    def cancel_after_three() -> bool:
        polls.append(1)
        return len(polls) > 3

    options = TranslateOptions(settings=RunSettings(windowing=Windowing(window_px=32, overlap_px=4)))
    result = translate(lc_model, reader, tmp_path / "out.tif", options,
                       is_canceled=cancel_after_three)
    assert result.canceled and result.output_path is None
    assert not (tmp_path / "out.tif").exists() and no_partial_files(tmp_path)
    run_reads = [w for w in reader.reads if w.width == 32]  # not the 64-px percentile sample
    assert 3 <= len(run_reads) < 12  # the read-ahead thread stopped too (8x8 = 64 windows in all)


def test_error_mid_run_leaves_no_file(lc_model: Model, tmp_path: Path) -> None:
    class FailingReader(ArrayReader):
        def read(self, window, bands):  # type: ignore[no-untyped-def]
            if len(self.reads) > 30:  # after the percentile sample, during the run
                raise InputRasterError("array: the drive went away")
            return super().read(window, bands)

    with pytest.raises(InputRasterError, match="drive went away"):
        translate(lc_model, FailingReader(image(np.random.default_rng(5), 200, 200)), tmp_path / "out.tif",
                  TranslateOptions(settings=RunSettings(windowing=Windowing(window_px=32))))
    assert list(tmp_path.iterdir()) == []


def test_progress_is_monotonic_and_ends_at_one(lc_model: Model, tmp_path: Path) -> None:
    seen: list[float] = []
    translate(lc_model, ArrayReader(image(np.random.default_rng(6), 100, 100)), tmp_path / "o.tif",
              TranslateOptions(settings=RunSettings(windowing=Windowing(window_px=32))), progress=seen.append)
    assert seen[0] == 0.0 and seen[-1] == 1.0 and seen == sorted(seen) and len(seen) > 5


def test_area_of_interest_skips_windows_and_masks_outside(lc_model: Model, tmp_path: Path) -> None:
    pixels = image(np.random.default_rng(7), 256, 256)
    options = TranslateOptions(settings=RunSettings(windowing=Windowing(window_px=64)))
    full = translate(lc_model, ArrayReader(pixels), tmp_path / "full.tif", options)
    x0, y0 = GEOTRANSFORM[0], GEOTRANSFORM[3]
    wkt = f"POLYGON(({x0} {y0}, {x0 + 1500} {y0}, {x0 + 1500} {y0 - 1500}, {x0} {y0 - 1500}, {x0} {y0}))"
    options = TranslateOptions(settings=RunSettings(windowing=Windowing(window_px=64), aoi_wkt=wkt))
    part = translate(lc_model, ArrayReader(pixels), tmp_path / "aoi.tif", options)
    assert part.tiles < full.tiles / 4
    a, b = read_tif(tmp_path / "aoi.tif")[0], read_tif(tmp_path / "full.tif")[0]
    np.testing.assert_array_equal(a[:50, :50], b[:50, :50])  # 1500 m = 50 px of 30 m
    assert (a[50:] == 255).all() and (a[:, 50:] == 255).all()
    with pytest.raises(OptionError, match="does not overlap"):
        translate(lc_model, ArrayReader(pixels), tmp_path / "x.tif",
                  TranslateOptions(settings=RunSettings(aoi_wkt="POLYGON((0 0,1 0,1 1,0 0))")))


def test_output_rules(lc_model: Model, tmp_path: Path) -> None:
    src = write_tif(tmp_path / "in.tif", image(np.random.default_rng(8), 40, 40))
    with GdalReader(src) as reader:
        with pytest.raises(OutputError, match="is the input raster"):
            translate(lc_model, reader, src)
        with pytest.raises(OutputError, match="does not exist"):
            translate(lc_model, reader, tmp_path / "missing" / "out.tif")
        (tmp_path / "exists.tif").write_bytes(b"keep me")
        with pytest.raises(OutputError, match="exists"):
            translate(lc_model, reader, tmp_path / "exists.tif", TranslateOptions(overwrite=False))
        assert (tmp_path / "exists.tif").read_bytes() == b"keep me"
        translate(lc_model, reader, tmp_path / "exists.tif")  # overwrite=True by default
    assert read_tif(tmp_path / "exists.tif").shape == (1, 40, 40)


def test_options_are_checked(lc_model: Model, rgb_model: Model, tmp_path: Path) -> None:
    """What needs the model is checked by the engine (the window against its size multiple, the overlap against
    the window, a confidence raster of a model without classes); the rest when the record is built."""
    reader = ArrayReader(image(np.random.default_rng(9), 40, 40))
    for windowing, match in [(Windowing(overlap_px=40, window_px=64), "less than half"),
                             (Windowing(window_px=30), "multiple")]:
        with pytest.raises(OptionError, match=match):
            translate(lc_model, reader, tmp_path / "o.tif", TranslateOptions(settings=RunSettings(windowing=windowing)))
    with pytest.raises(OptionError, match="batch_size"):
        Windowing(batch_size=0)
    with pytest.raises(OptionError, match="land-cover output"):
        translate(rgb_model, ArrayReader(CODES[np.zeros((8, 8), int)]), tmp_path / "o.tif",
                  TranslateOptions(confidence_path=str(tmp_path / "c.tif")))
    assert no_partial_files(tmp_path)


def test_translate_is_the_same_through_gdal_and_an_array_reader(lc_model: Model, tmp_path: Path) -> None:
    pixels = image(np.random.default_rng(10), 77, 91)
    translate(lc_model, ArrayReader(pixels), tmp_path / "a.tif")
    with GdalReader(write_tif(tmp_path / "in.tif", pixels)) as reader:
        result = translate(lc_model, reader, tmp_path / "b.tif")
    np.testing.assert_array_equal(read_tif(tmp_path / "a.tif"), read_tif(tmp_path / "b.tif"))
    assert result.provider == "CPUExecutionProvider" and result.mpx_per_s > 0


def test_direction_of_contract(lc_model: Model) -> None:
    assert lc_model.contract.direction is Direction.RGB_TO_LANDCOVER


def test_gdal_reader_keeps_gdal_block_cache_bounded(tmp_path: Path) -> None:
    """Reading strip after strip must not fill GDAL's global block cache with the whole raster."""
    pixels = np.random.default_rng(11).integers(0, 60000, (3, 2048, 1024)).astype(np.uint16)  # 12 MB
    src = write_tif(tmp_path / "tall.tif", pixels)
    gdal.GetDriverByName("GTiff")  # (driver loaded; the cache starts from whatever other tests left)
    with GdalReader(src) as reader:
        start = gdal.GetCacheUsed()
        peak = 0
        for row in range(0, 2048, 128):
            reader.read(Window(0, row, 1024, 160 if row + 160 <= 2048 else 2048 - row), (1, 2, 3))
            peak = max(peak, gdal.GetCacheUsed() - start)
    assert peak < 3 * 1024 * 2 * 300  # about two strips of blocks, not the 12 MB raster
