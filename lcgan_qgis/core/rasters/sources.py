"""Which local files a raster really reads: one answer for every output check (:func:`input_files`,
:func:`check_output_paths`).

A raster is named by a path or by a GDAL connection string, and a VRT names its sources the same ways. Each name is
followed down to the files on disk:

- a plain path, and GDAL's file list of the dataset (side-cars: ``.aux.xml``, ``.msk``, ``.ovr``, world files);
- subdataset strings ``DRIVER:...`` (``GTIFF_DIR:1:/abs/lc.tif``, ``NETCDF:"/abs/f.nc":var``, ``HDF5:"f.h5"://x``,
  ``GPKG:/abs/f.gpkg:table``): the file named inside them, quoted or between colons;
- virtual file systems over a local file: ``/vsisubfile/OFFSET_SIZE,/abs/lc.tif``, ``/vsigzip/``, ``/vsizip/``,
  ``/vsitar/``, ``/vsi7z/``, ``/vsirar/`` (the archive itself); network and memory ones (``/vsicurl/``,
  ``/vsimem/``...) read no local file;
- VRT sources, recursively (a VRT of VRTs, a VRT of a subdataset as ``gdal_translate -of VRT`` writes it), with
  relative source names resolved against the VRT's folder, up to :data:`MAX_SOURCE_FILES` files.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

from ..storage.paths import check_output_targets, same_file

MAX_SOURCE_FILES = 10_000  # VRTs of VRTs: stop listing (and stop recursing) beyond this many files
MAX_VRT_BYTES = 50_000_000  # a VRT larger than this is not parsed for its sources (GDAL's file list still is)
#: Virtual file systems whose path continues with a local file (an archive, or a file read in part).
_LOCAL_VSI = ("/vsisubfile/", "/vsigzip/", "/vsizip/", "/vsitar/", "/vsi7z/", "/vsirar/")
_DRIVER = re.compile(r"^([A-Za-z][A-Za-z0-9_]+):(.+)$", re.S)


def _existing_prefix(text: str) -> Path | None:
    """The longest prefix of ``text`` (cut at a ``/``, ``,`` or ``:``) that is an existing file or folder."""
    cuts = [i for i, ch in enumerate(text) if ch in "/:,\\"] + [len(text)]
    for end in reversed(cuts):
        candidate = text[:end]
        if candidate and Path(candidate).exists():
            return Path(candidate)
    return None


def local_paths(name: str, base: Path | None = None) -> list[Path]:
    """The local files a GDAL dataset name points at (without side-cars or VRT sources): see the module."""
    name = name.strip()
    if not name:
        return []
    for prefix in _LOCAL_VSI:
        if name.startswith(prefix):
            rest = name[len(prefix):]
            if prefix == "/vsisubfile/":
                rest = rest.split(",", 1)[1] if "," in rest else rest
            found = _existing_prefix(rest)
            return [found] if found is not None and found.is_file() else local_paths(rest, base)
    if name.startswith("/vsi"):
        return []  # network or memory: no local file
    path = Path(name) if base is None or Path(name).is_absolute() else base / name
    if path.exists():
        return [path]
    match = _DRIVER.match(name)
    if match is None or len(match.group(1)) == 1:  # (a Windows drive letter is not a driver)
        return []
    found = []
    body = match.group(2)
    for quoted in re.findall(r'"([^"]+)"', body):  # NETCDF:"/abs/f.nc":var
        found += local_paths(quoted, base)
    if not found:
        parts = body.split(":")
        for i in range(len(parts)):  # GTIFF_DIR:1:/abs/lc.tif, GPKG:/abs/f.gpkg:table, C:\\x on Windows
            for j in range(len(parts), i, -1):
                candidate = ":".join(parts[i:j])
                target = Path(candidate) if base is None or Path(candidate).is_absolute() else base / candidate
                if candidate and target.is_file():
                    found.append(target)
                    break
            if found:
                break
    return found


def _vrt_sources(path: Path) -> list[tuple[str, Path | None]]:
    """Source names of a VRT file and the folder relative ones are read from."""
    try:
        if path.stat().st_size > MAX_VRT_BYTES:
            return []
        root = ET.parse(path).getroot()  # (ElementTree expands no external entities)
    except (OSError, ET.ParseError):
        return []
    out = []
    for element in root.iter():
        if element.tag in ("SourceFilename", "SourceDataset") and element.text:
            relative = element.get("relativeToVRT", "0") == "1" or element.tag == "SourceDataset"
            out.append((element.text.strip(), path.parent if relative else None))
    return out


def input_files(source: str | Path | None) -> list[Path]:
    """Every local file a raster reads: the file(s) its name points at, their side-cars and, for a VRT, its sources
    (recursively, whatever way they are named). ``source`` may be anything GDAL opens; a name that is not a raster
    GDAL can open gives the files it points at, else nothing."""
    if not source:
        return []
    from osgeo import gdal

    from .gdal_io import gdal_call, gdal_errors

    found: list[Path] = []
    seen: set[str] = set()
    pending: list[tuple[str, Path | None]] = [(str(source), None)]
    while pending and len(found) < MAX_SOURCE_FILES:
        name, base = pending.pop()
        key = f"{base}|{name}"
        if key in seen:
            continue
        seen.add(key)
        for path in local_paths(name, base):
            if str(path) not in seen:
                seen.add(str(path))
                found.append(path)
                if path.suffix.lower() == ".vrt":
                    pending += _vrt_sources(path)
                elif str(path) != name:  # reached through a connection string: its own side-cars too
                    pending.append((str(path), None))
        opened = name if base is None or Path(name).is_absolute() or name.startswith("/vsi") or \
            _DRIVER.match(name) else str(base / name)
        with gdal_errors() as errors:
            dataset = gdal_call(errors, gdal.OpenEx, opened, gdal.OF_RASTER | gdal.OF_READONLY)
            files = (dataset.GetFileList() or []) if dataset is not None else []
            dataset = None
        for item in files:
            for path in local_paths(item):
                if str(path) not in seen:
                    seen.add(str(path))
                    found.append(path)
                    if path.suffix.lower() == ".vrt":
                        pending += _vrt_sources(path)
    return found


def palette_reason(source: str) -> str | None:
    """A sentence when band 1 of ``source`` is a palette (colour-table) image: its values are indices into the
    table, not colours, so neither a band mapping nor the image itself is what an imagery model should see."""
    from osgeo import gdal

    from .gdal_io import gdal_call, gdal_errors

    with gdal_errors() as errors:
        dataset = gdal_call(errors, gdal.OpenEx, str(source), gdal.OF_RASTER | gdal.OF_READONLY)
        band = dataset.GetRasterBand(1) if dataset is not None and dataset.RasterCount else None
        paletted = band is not None and band.GetColorInterpretation() == gdal.GCI_PaletteIndex and \
            band.GetColorTable() is not None
        dataset = None
    if not paletted:
        return None
    return ("It is a palette (colour-table) image: its values are indices into a table of colours, not colours. "
            "Expand it to red, green and blue first (gdal_translate -expand rgb in.tif rgb.tif, or Raster > "
            "Conversion > Translate with 'Expand' set to RGB) and translate that.")


def check_elevation_source(elevation: str | Path, landcover: str | Path | None) -> None:
    """The DEM must be heights in its first band, and not the land cover itself (by any name).

    Raises:
        InputRasterError: the DEM is a file the land-cover input reads, looks like colour imagery (three or more
            data bands, or red/green/blue bands), or is a class map (a colour table or class names on a byte band).
    """
    from osgeo import gdal

    from ..errors import InputRasterError
    from .gdal_io import gdal_call, gdal_errors

    mine = input_files(landcover) if landcover else []
    for source in input_files(elevation):
        if any(same_file(source, other) for other in mine):
            raise InputRasterError(f"The elevation raster {elevation} is {source}, which the land-cover input "
                                   f"{landcover} reads: a DEM holds heights, not classes. Give the DEM of the same "
                                   "area (e.g. SRTM).")
    with gdal_errors() as errors:
        dataset = gdal_call(errors, gdal.OpenEx, str(elevation), gdal.OF_RASTER | gdal.OF_READONLY)
        if dataset is None:
            return  # (the reader names the file it cannot open)
        bands = [dataset.GetRasterBand(b + 1) for b in range(dataset.RasterCount)]
        bands = [b for b in bands if b.GetColorInterpretation() != gdal.GCI_AlphaBand]
        first = bands[0] if bands else None
        classes = first is not None and first.DataType == gdal.GDT_Byte and (
            first.GetColorTable() is not None or bool(first.GetCategoryNames()))
        colours = [b.GetColorInterpretation() for b in bands]
        dataset = None
    imagery = len(bands) >= 3 or any(c in (gdal.GCI_RedBand, gdal.GCI_GreenBand, gdal.GCI_BlueBand) for c in colours)
    if imagery:  # (a second band, e.g. a quality layer, is allowed: the first band holds the heights)
        raise InputRasterError(f"The elevation raster {elevation} has {len(bands)} bands (colour imagery?); a DEM is "
                               "one band of heights. Give a one-band elevation model (e.g. SRTM).")
    if classes:
        raise InputRasterError(f"The elevation raster {elevation} is a byte raster with a colour table or class names: "
                               "a class map, not heights. Give a one-band elevation model (e.g. SRTM).")


def check_output_paths(output_path: str | Path | None, confidence_path: str | Path | None = None,
                       input_path: str | Path | None = None, overwrite: bool = True,
                       elevation_path: str | Path | None = None) -> None:
    """Refuse outputs that cannot or must not be written, before any work is done: the path rules of
    :func:`~lcgan_qgis.core.storage.paths.check_output_targets`, and no output may replace a file the input or the
    DEM reads (:func:`input_files`).

    Args:
        output_path: the GeoTIFF to write.
        confidence_path: the optional second GeoTIFF (land-cover confidence).
        input_path: the input raster (a path or a GDAL string); no output may replace a file it reads.
        overwrite: ``False`` refuses an existing output.
        elevation_path: the run's second input (a DEM), held to the same rule as ``input_path``.

    Raises:
        OutputError: naming the path at fault and the real reason (see ``check_output_targets``).
        InputRasterError: the DEM is not heights (:func:`check_elevation_source`).
    """
    def read_sources() -> list[tuple[str, str | Path | None, Path]]:
        if elevation_path:
            check_elevation_source(elevation_path, input_path)  # (one band of heights, not the land cover by any name)
        return [(kind, raster, source) for kind, raster in (("input raster", input_path),
                                                            ("elevation raster", elevation_path))
                for source in input_files(raster)]

    check_output_targets(output_path, confidence_path, overwrite, read_sources)
