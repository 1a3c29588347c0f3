"""How every GeoTIFF lcgan writes is laid out (core/rasters/geotiff.py): one block size, the creation options, the
overview levels, and the writer (whole file or nothing)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from osgeo import gdal

from lcgan_qgis.core.rasters.geotiff import BLOCK_PX, GeoTiffWriter, overview_factors
from tests.fixtures.rasters import GEOTRANSFORM, crs_wkt


def test_overviews_halve_until_one_block_holds_the_level() -> None:
    assert overview_factors(BLOCK_PX, BLOCK_PX) == []
    assert overview_factors(BLOCK_PX + 1, 10) == [2]
    assert overview_factors(3000, 1000) == [2, 4, 8, 16]  # 3000 / 8 = 375 > 256, 3000 / 16 = 187.5


def test_the_writer_lays_out_blocks_and_commits_whole(tmp_path: Path) -> None:
    out = tmp_path / "out.tif"
    pixels = np.random.default_rng(0).integers(1, 255, (1, 270, 300)).astype(np.uint8)
    with GeoTiffWriter(out, 300, 270, 1, np.uint8, GEOTRANSFORM, crs_wkt(), nodata=0) as writer:
        writer.write(0, 0, pixels)
        assert not out.exists()  # nothing under the output's name before the commit
        writer.commit()
    ds = gdal.Open(str(out))
    assert ds.GetRasterBand(1).GetBlockSize() == [BLOCK_PX, BLOCK_PX]
    assert ds.GetMetadataItem("COMPRESSION", "IMAGE_STRUCTURE") == "DEFLATE"
    assert ds.GetGeoTransform() == GEOTRANSFORM and ds.GetRasterBand(1).GetNoDataValue() == 0
    np.testing.assert_array_equal(ds.ReadAsArray(), pixels[0])


def test_an_aborted_writer_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out.tif"
    with GeoTiffWriter(out, 10, 10, 1, np.uint8, GEOTRANSFORM, crs_wkt()) as writer:
        writer.write(0, 0, np.ones((1, 10, 10), np.uint8))
        writer.abort()
    assert list(tmp_path.iterdir()) == []
