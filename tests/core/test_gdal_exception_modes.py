"""The core's GDAL I/O behaves the same whether or not someone in the process called gdal.UseExceptions()."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal

from lcgan_qgis.core.errors import InputRasterError, OptionError, OutputError
from lcgan_qgis.core.rasters.aoi import AreaOfInterest
from lcgan_qgis.core.rasters.gdal_io import GdalReader
from lcgan_qgis.core.rasters.geotiff import GeoTiffWriter
from lcgan_qgis.core.rasters.raster import RasterInfo, Window


@pytest.fixture(params=[True, False], ids=["exceptions-on", "exceptions-off"])
def gdal_mode(request: pytest.FixtureRequest) -> Iterator[bool]:
    before = gdal.GetUseExceptions()
    if request.param:
        gdal.UseExceptions()
    else:
        gdal.DontUseExceptions()
    yield request.param
    if before:
        gdal.UseExceptions()
    else:
        gdal.DontUseExceptions()


def test_unreadable_file_is_an_input_error(gdal_mode: bool, tmp_path: Path) -> None:
    bad = tmp_path / "text.tif"
    bad.write_text("not a raster")
    with pytest.raises(InputRasterError, match=r"Cannot open .*text\.tif as a raster: .*not recognized"):
        GdalReader(bad)


def test_write_then_read_round_trip(gdal_mode: bool, tmp_path: Path) -> None:
    out = tmp_path / "o.tif"
    pixels = np.arange(2 * 5 * 7, dtype=np.uint16).reshape(2, 5, 7)
    with GeoTiffWriter(out, 7, 5, 2, "uint16", (0, 1, 0, 0, 0, -1), "", nodata=0) as writer:
        writer.write(0, 0, pixels)
        writer.commit()
    with GdalReader(out) as reader:
        np.testing.assert_array_equal(reader.read(Window(0, 0, 7, 5), [1, 2]), pixels)


def test_create_in_missing_folder_is_an_output_error(gdal_mode: bool, tmp_path: Path) -> None:
    with pytest.raises(OutputError, match=r"output folder .*missing does not exist"):
        GeoTiffWriter(tmp_path / "missing" / "o.tif", 4, 4, 1, "uint8", (0, 1, 0, 0, 0, -1), "")


def test_bad_area_of_interest_is_an_option_error(gdal_mode: bool) -> None:
    from osgeo import ogr

    before = ogr.GetUseExceptions()
    ogr.UseExceptions() if gdal_mode else ogr.DontUseExceptions()
    try:
        info = RasterInfo("r.tif", 10, 10, 1, "uint8", (None,), (0, 1, 0, 10, 0, -1), "")
        with pytest.raises(OptionError, match=r"The area of interest is not valid WKT: 'POLYGON \(\(oops'"):
            AreaOfInterest("POLYGON ((oops", info)
    finally:
        ogr.UseExceptions() if before else ogr.DontUseExceptions()
