"""Writing onto an input by another name (issue 24): one resolution of "which files does this input really read"
(``lcgan_qgis/core/rasters/sources.py::input_files``) behind every output check, following GDAL's connection strings
and VRT sources; the output's side-car; an existing GeoPackage's other layers."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal, ogr

from lcgan_qgis.core.errors import OutputError
from lcgan_qgis.core.rasters.sources import check_output_paths, input_files, local_paths
from lcgan_qgis.core.rasters.vectorize import check_vector_path
from tests.fixtures.rasters import write_tif

CODES = np.array([11, 21, 42, 52, 71, 81], dtype=np.uint8)


def _lc(folder: Path, name: str = "lc.tif") -> Path:
    return write_tif(folder / name, CODES[np.random.default_rng(0).integers(0, 6, (32, 32))])


def _vrt_of(source_name: str, path: Path, relative: bool = False) -> Path:
    """A VRT whose one source is named exactly ``source_name`` (any GDAL string)."""
    path.write_text(
        '<VRTDataset rasterXSize="32" rasterYSize="32"><GeoTransform>0,30,0,0,0,-30</GeoTransform>'
        '<VRTRasterBand dataType="Byte" band="1"><SimpleSource>'
        f'<SourceFilename relativeToVRT="{int(relative)}">{source_name}</SourceFilename><SourceBand>1</SourceBand>'
        '</SimpleSource></VRTRasterBand></VRTDataset>')
    return path


def _subfile(lc: Path) -> str:
    return f"/vsisubfile/0_{lc.stat().st_size},{lc}"


# Each case: (id, build(tmp) -> (input name, the file an output must not replace)).
CASES = [
    ("GTIFF_DIR string as input", lambda t: (f"GTIFF_DIR:1:{_lc(t)}", t / "lc.tif")),
    ("/vsisubfile/ as input", lambda t: (_subfile(_lc(t)), t / "lc.tif")),
    ("VRT naming its source GTIFF_DIR:1:/abs/lc.tif",
     lambda t: (str(_vrt_of(f"GTIFF_DIR:1:{_lc(t)}", t / "a.vrt")), t / "lc.tif")),
    ("VRT naming its source /vsisubfile/...", lambda t: (str(_vrt_of(_subfile(_lc(t)), t / "a.vrt")), t / "lc.tif")),
    ("gdal_translate -of VRT of a subdataset", lambda t: (
        str(gdal.Translate(str(t / "sub.vrt"), f"GTIFF_DIR:1:{_lc(t)}", format="VRT") and t / "sub.vrt"),
        t / "lc.tif")),
    ("VRT of a VRT of GTIFF_DIR", lambda t: (
        str(_vrt_of(str(_vrt_of(f"GTIFF_DIR:1:{_lc(t)}", t / "inner.vrt")), t / "outer.vrt")), t / "lc.tif")),
    ("VRT with a relative source in another folder", lambda t: (
        (t / "sub").mkdir() or str(_vrt_of("../lc.tif", t / "sub" / "rel.vrt", relative=True)) if _lc(t) else "",
        t / "lc.tif")),
    ("VRT naming its source through a symlinked folder", lambda t: (
        (t / "alias").symlink_to(t) or str(_vrt_of(str(t / "alias" / _lc(t).name), t / "a.vrt")), t / "lc.tif")),
    ("VRT naming a relative GTIFF_DIR source", lambda t: (
        str(_vrt_of(f"GTIFF_DIR:1:{_lc(t).name}", t / "a.vrt", relative=True)), t / "lc.tif")),
    ("hard link of the VRT's source", lambda t: (
        str(_vrt_of(str(t / "lc.tif"), t / "a.vrt")) if not os.link(_lc(t), t / "linked.tif") else "",
        t / "linked.tif")),
]


@pytest.mark.parametrize("build", [c[1] for c in CASES], ids=[c[0] for c in CASES])
def test_an_output_onto_a_file_the_input_reads_is_refused(tmp_path: Path, build) -> None:
    name, protected = build(tmp_path)
    before = protected.read_bytes()
    assert gdal.Open(name) is not None, name  # (a raster GDAL really reads through that name)
    with pytest.raises(OutputError, match=r"(is the input raster itself|a file the input raster reads)"):
        check_output_paths(protected, input_path=name)
    with pytest.raises(OutputError, match=r"a file the elevation raster reads|elevation raster itself"):
        check_output_paths(protected, input_path=str(_lc(tmp_path, "other.tif")), elevation_path=name)
    assert protected.read_bytes() == before


def test_the_side_car_of_an_output_onto_a_vrt_source_is_refused(tmp_path: Path) -> None:
    lc = _lc(tmp_path, "x.tif")
    aux = Path(f"{lc}.aux.xml")
    vrt = _vrt_of(f"GTIFF_DIR:1:{lc}", tmp_path / "a.vrt")
    # an output named x.tif.aux.xml.tif? no: the output whose .aux.xml is a source ("lc.tif" -> "lc.tif.aux.xml")
    aux.write_text("<PAMDataset/>")
    with pytest.raises(OutputError, match="a file the input raster reads"):
        check_output_paths(lc, input_path=str(vrt))


@pytest.mark.parametrize("kind", ["folder", "fifo"])
def test_an_output_whose_side_car_is_not_a_file_is_refused_before_anything_is_replaced(tmp_path: Path,
                                                                                       kind: str) -> None:
    out = tmp_path / "out.tif"
    out.write_bytes(b"the earlier output")
    sidecar = Path(f"{out}.aux.xml")
    sidecar.mkdir() if kind == "folder" else os.mkfifo(sidecar)
    with pytest.raises(OutputError, match=rf"sidecar {sidecar} is a (folder|named pipe)"):
        check_output_paths(out, input_path=str(_lc(tmp_path)))
    assert out.read_bytes() == b"the earlier output"


@pytest.mark.parametrize("name, expected", [
    ("GTIFF_DIR:1:{lc}", "lc.tif"), ('NETCDF:"{lc}":var', "lc.tif"), ("GPKG:{lc}:table", "lc.tif"),
    ("/vsisubfile/10_20,{lc}", "lc.tif"), ("/vsigzip/{lc}", "lc.tif"), ("/vsizip/{lc}/inner/x.tif", "lc.tif"),
    ("/vsicurl/https://example.com/x.tif", None), ("/vsimem/x.tif", None), ("NOSUCH:/nonexistent/x.tif", None),
])
def test_local_paths_of_connection_strings(tmp_path: Path, name: str, expected: str | None) -> None:
    lc = _lc(tmp_path)
    found = local_paths(name.format(lc=lc))
    assert found == ([tmp_path / expected] if expected else [])


def test_input_files_lists_side_cars_and_nested_sources(tmp_path: Path) -> None:
    lc = _lc(tmp_path)
    Path(f"{lc}.aux.xml").write_text("<PAMDataset/>")
    outer = _vrt_of(str(_vrt_of(f"GTIFF_DIR:1:{lc}", tmp_path / "inner.vrt")), tmp_path / "outer.vrt")
    names = {p.name for p in input_files(str(outer))}
    assert {"outer.vrt", "inner.vrt", "lc.tif", "lc.tif.aux.xml"} <= names


def _gpkg(path: Path, layers: list[str]) -> Path:
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    for name in layers:
        ds.CreateLayer(name, None, ogr.wkbPolygon)
    ds = None
    return path


def test_a_vector_output_onto_a_geopackage_with_other_layers_is_refused(tmp_path: Path) -> None:
    gpkg = _gpkg(tmp_path / "city.gpkg", ["roads", "parcels"])
    before = gpkg.read_bytes()
    with pytest.raises(OutputError, match=r"already holds other data \(layer\(s\) 'roads', 'parcels'\)"):
        check_vector_path(gpkg)
    assert gpkg.read_bytes() == before


def test_a_vector_output_onto_lcgan_s_own_earlier_output_is_allowed(tmp_path: Path) -> None:
    check_vector_path(_gpkg(tmp_path / "classes.gpkg", ["land_cover"]))


@pytest.mark.parametrize("content", [b"not a vector", b""])
def test_a_vector_output_onto_an_unreadable_file_is_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "notes.gpkg"
    path.write_bytes(content)
    with pytest.raises(OutputError, match="is not a vector file GDAL can read"):
        check_vector_path(path)
