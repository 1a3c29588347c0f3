"""Unpaired GeoTIFF windows: codes -> indices, nodata masks aligned through flips, clear errors, areas."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio

from lcgan_qgis.core.errors import InputRasterError, SchemeError
from lcgan_qgis.core.model.scheme import ClassScheme
from lcgan_qgis.core.resources import default_scheme_path
from tests.fixtures.training import tiny_config, write_image, write_landcover
from training.data import (
    ImageRasters,
    LandCoverRasters,
    RasterSource,
    StepSampler,
    UnpairedWindows,
    augment,
    build_datasets,
)

SCHEME = ClassScheme.load(default_scheme_path())


def test_flips_and_rotations_keep_masks_aligned_with_pixels() -> None:
    rng = np.random.default_rng(0)
    valid = rng.random((16, 12)) > 0.3
    pixels = rng.normal(size=(3, 16, 12)).astype(np.float32)
    pixels[0] = valid * 10.0 + rng.random((16, 12))  # band 0 encodes the mask
    indices = np.arange(16 * 12).reshape(16, 12)
    seen = set()
    for seed in range(60):
        r = np.random.default_rng(seed)
        out_pixels, out_valid, out_indices = augment([pixels, valid, indices], r, rot90=True)
        assert np.array_equal(out_pixels[0] > 5.0, out_valid)
        assert np.array_equal(valid.ravel()[out_indices.ravel()], out_valid.ravel())
        seen.add(out_indices.tobytes())
    assert len(seen) == 8  # flips x 90-degree turns span the 8 symmetries of the square


def test_dataset_windows_nodata_masks_match_the_rasters(data_dir: Path) -> None:
    config = tiny_config("data.rot90=true")
    landcover, images = build_datasets(config, data_dir, SCHEME)
    dataset = UnpairedWindows(landcover, images, length=50, seed=3, rot90=True)
    for i in range(50):
        item = dataset[i]
        assert item["rgb"].shape == (3, 32, 32) and item["lc_index"].shape == (32, 32)
        rgb, valid = item["rgb"].numpy(), item["rgb_valid"].numpy()
        assert np.all(rgb[:, ~valid] == -1.0)  # nodata pixels are black and masked
        assert 1 - valid.mean() <= 0.5 and 1 - item["lc_valid"].float().mean() <= 0.5
        assert item["lc_index"][~item["lc_valid"]].eq(0).all()
    again = UnpairedWindows(landcover, images, length=50, seed=3, rot90=True)
    assert all(np.array_equal(dataset[i]["rgb"], again[i]["rgb"]) for i in (0, 7, 49))


def test_landcover_indices_follow_the_scheme(tmp_path: Path) -> None:
    path = write_landcover(tmp_path / "lc.tif", size=32, nodata_rows=0, codes=(42,))
    reader = LandCoverRasters([RasterSource.open(path)], SCHEME, 32)
    indices, valid = reader.sample(np.random.default_rng(0))
    assert valid.all() and np.all(indices == SCHEME.codes.index(42))


def test_unknown_codes_name_the_code_and_the_file(tmp_path: Path) -> None:
    path = write_landcover(tmp_path / "bad.tif", size=32, nodata_rows=0, codes=(42, 77))
    reader = LandCoverRasters([RasterSource.open(path)], SCHEME, 32)
    with pytest.raises(SchemeError, match=r"bad\.tif.*77"):
        reader.sample(np.random.default_rng(0))


def test_empty_and_too_small_datasets_give_clear_errors(tmp_path: Path) -> None:
    all_nodata = write_landcover(tmp_path / "empty.tif", size=48, nodata_rows=48)
    reader = LandCoverRasters([RasterSource.open(all_nodata)], SCHEME, 32)
    with pytest.raises(InputRasterError, match=r"No 32x32 land-cover window.*empty\.tif"):
        reader.sample(np.random.default_rng(0))
    small = write_image(tmp_path / "small.tif", size=24)
    with pytest.raises(InputRasterError, match=r"small\.tif is 24x24 px, smaller than the 32 px crop"):
        ImageRasters([RasterSource.open(small)], [1, 2, 3], 32)
    with pytest.raises(InputRasterError, match="band"):
        ImageRasters([RasterSource.open(write_image(tmp_path / "img.tif", size=48))], [1, 4], 32)
    with pytest.raises(InputRasterError, match="missing.tif"):
        RasterSource.open(tmp_path / "missing.tif")
    with pytest.raises(InputRasterError, match="no valid pixel"):
        ImageRasters([RasterSource.open(write_image(tmp_path / "dark.tif", size=48, nodata_cols=48))], [1, 2, 3], 32)


def test_radiometry_percentiles_exclude_nodata(tmp_path: Path) -> None:
    path = write_image(tmp_path / "img.tif", size=64, nodata_cols=32)
    images = ImageRasters([RasterSource.open(path)], [1, 2, 3], 32, percentiles=(2.0, 98.0))
    with rasterio.open(path) as ds:
        data = ds.read()
    valid = data[0] > 0
    expected = np.percentile(data[0][valid], 2.0)
    assert images.radiometry.low[0] == pytest.approx(expected)
    assert min(images.radiometry.low) > 1000  # zeros (nodata) did not pull the low end down


def test_training_areas_restrict_windows(tmp_path: Path) -> None:
    path = write_image(tmp_path / "img.tif", size=96, nodata_cols=0)
    # left half of the raster (origin 300000, 4150000; 30 m pixels): x 300000..301440
    polygon = {"type": "Polygon", "coordinates": [[[300000, 4147120], [301440, 4147120], [301440, 4150000],
                                                     [300000, 4150000], [300000, 4147120]]]}
    areas_path = tmp_path / "train.geojson"
    areas_path.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": polygon}]}))
    from training.areas import load_areas

    reader = ImageRasters([RasterSource.open(path)], [1, 2, 3], 32, areas=load_areas(areas_path))
    rng = np.random.default_rng(0)
    for _ in range(30):
        _, window = next(reader.candidates(rng))
        assert window.col_off + window.width <= 48
    with pytest.raises(InputRasterError, match="no polygon"):
        bad = tmp_path / "points.geojson"
        bad.write_text(json.dumps({"type": "Point", "coordinates": [0, 0]}))
        load_areas(bad)


def test_step_sampler_splits_ranks_and_resumes() -> None:
    full = list(StepSampler(0, 4, 2))
    assert full == list(range(8))
    assert list(StepSampler(2, 4, 2)) == full[4:]
    r0, r1 = list(StepSampler(0, 3, 2, rank=0, world=2)), list(StepSampler(0, 3, 2, rank=1, world=2))
    assert not set(r0) & set(r1) and sorted(r0 + r1) == list(range(12))


def test_training_and_inference_agree_on_which_image_pixels_are_nodata(tmp_path: Path) -> None:
    """One rule, one function: a raster where some pixels are nodata in one band only, some in all bands and some
    NaN. The training reader's mask equals the mask the engine writes (output nodata) pixel for pixel."""
    from rasterio.windows import Window

    from lcgan_qgis.core.model.runtime import load_model
    from lcgan_qgis.core.rasters.gdal_io import GdalReader
    from lcgan_qgis.core.run.engine import translate
    from tests.fixtures.onnx_factory import write_pointwise

    rng = np.random.default_rng(0)
    pixels = rng.uniform(6000, 15000, (3, 64, 64)).astype(np.float32)
    pixels[0, 5:15, 5:15] = -9999  # one band at nodata
    pixels[:, 30:40, 30:40] = -9999  # every band at nodata
    pixels[2, 50:55, 10:20] = np.nan
    path = tmp_path / "partial.tif"
    with rasterio.open(path, "w", driver="GTiff", width=64, height=64, count=3, dtype="float32", crs="EPSG:32612",
                       transform=rasterio.transform.from_origin(300000, 4150000, 30, 30), nodata=-9999) as ds:
        ds.write(pixels)
    images = ImageRasters([RasterSource.open(path)], [1, 2, 3], 32, max_nodata_fraction=1.0)
    _pixels, train_valid = images.read(images.sources[0], Window(0, 0, 64, 64))
    model = write_pointwise(tmp_path / "m.onnx", "rgb_to_landcover")
    with load_model(model, "cpu") as m, GdalReader(path) as reader:
        translate(m, reader, tmp_path / "out.tif")
    with rasterio.open(tmp_path / "out.tif") as ds:
        engine_valid = ds.read(1) != ds.nodata
    assert np.array_equal(train_valid, engine_valid)
    assert not train_valid[30:40, 30:40].any() and not train_valid[50:55, 10:20].any()


@pytest.mark.parametrize(("crs", "pixel", "expected_m"), [
    ("EPSG:32612", 30.0, 30.0),  # UTM, metres
    ("EPSG:2222", 100.0, 30.48),  # Arizona East, international feet
    ("EPSG:4326", 0.00027, 27.0),  # degrees near 37.3 N: 23.9 m across, 30.1 m along
])
def test_gsd_is_in_metres_whatever_the_crs_units(tmp_path: Path, crs: str, pixel: float, expected_m: float) -> None:
    origin = (-113.0, 37.3) if crs == "EPSG:4326" else (300000.0, 4150000.0)
    path = tmp_path / "g.tif"
    with rasterio.open(path, "w", driver="GTiff", width=8, height=8, count=1, dtype="uint8", crs=crs,
                       transform=rasterio.transform.from_origin(*origin, pixel, pixel)) as ds:
        ds.write(np.zeros((1, 8, 8), np.uint8))
    source = RasterSource.open(path)
    assert source.pixel_size_crs == pytest.approx(pixel)
    assert source.gsd_m == pytest.approx(expected_m, rel=0.02)
