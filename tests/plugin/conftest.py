"""Fixtures for the plugin tests: clips of the real Zion sample, a fresh dock per test, XYZ tiles. The shared ones
(tiny contract models, Processing with lcgan, the stand-in iface) and the helpers: :mod:`tests.fixtures.plugin`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal

# iface, lcgan, models: fixtures, registered for this folder.
from tests.fixtures.plugin import (  # noqa: F401
    iface,
    image_array,
    lcgan,
    models,
    write_raster,
)


@pytest.fixture(scope="session")
def zion_clips(zion_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """300 x 200 pixel clips of the real Zion land cover and Landsat RGB (on their own grids)."""
    folder = tmp_path_factory.mktemp("zion")
    clips = {}
    for key, name in (("landcover", "nlcd2011.tif"), ("rgb", "landsat8_rgb.tif")):
        clips[key] = folder / f"{key}.tif"
        gdal.Translate(str(clips[key]), str(zion_dir / name), srcWin=[400, 500, 300, 200])
    return clips


@pytest.fixture(autouse=True)
def fresh_dock_settings(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each test starts with a dock that remembers nothing (the dock keeps its choices in QgsSettings)."""
    if "qgis_app" not in request.fixturenames and "iface" not in request.fixturenames:
        yield
        return
    from qgis.core import QgsSettings

    QgsSettings().remove("lcgan/dock")
    yield
    QgsSettings().remove("lcgan/dock")


@pytest.fixture(scope="session")
def xyz_tiles(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The source of an XYZ tile layer over a local ``file://`` tile folder (standing in for an online basemap),
    made with gdal2tiles from an 8-bit RGB raster near Zion (zoom 11-13)."""
    from osgeo_utils import gdal2tiles

    folder = tmp_path_factory.mktemp("xyz")
    rgb = image_array(300, 300, seed=5, nodata_corner=False)
    scaled = ((rgb.astype(np.float32) - 6000) / 10000 * 220 + 20).astype(np.uint8)
    source = write_raster(folder / "rgb8.tif", scaled, (320000.0, 30.0, 0, 4130000.0, 0, -30.0))
    gdal2tiles.main(["gdal2tiles.py", "--xyz", "-z", "11-13", "-w", "none", "-q", str(source), str(folder / "tiles")])
    return f"type=xyz&url=file://{folder / 'tiles'}/{{z}}/{{x}}/{{y}}.png&zmin=11&zmax=13"
