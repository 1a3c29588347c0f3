"""The embedded demo input: a procedural, georeferenced NLCD land-cover map, deterministic from a seed.

The landscape imitates the Zion sample's make-up (NLCD 2011 around Zion National Park): evergreen forest and
shrub dominate, deciduous forest on the moist uplands, barren canyons along ridged lines, a few lakes in low basins
fringed by wetlands, towns in the lowlands joined by thin roads, with pasture and crops around them and meadows of
grassland. Proportions of the real sample (1073 x 1019 px): 42 evergreen 44 %, 52 shrub 29 %, 41 deciduous 18 %,
31 barren 7 %, 21 developed open space 0.9 %, every other class under 1 %. Water is rarer there (0.09 %); the demo
gives it about 1 % so that lakes are visible.

Everything is elementwise numpy on a seeded ``numpy.random.Generator`` (value noise with smoothstep interpolation,
no FFT), so one seed gives the same codes and a byte-identical GeoTIFF on every run.

Usage: ``python -m tools.demo_input --out out/demo_landcover_input.tif [--size 1024] [--seed 0]``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path

import numpy as np
from osgeo import gdal, osr

from lcgan_qgis.core.errors import OutputError
from lcgan_qgis.core.model.scheme import ClassScheme
from lcgan_qgis.core.rasters.geotiff import GEOTIFF_CREATION_OPTIONS
from lcgan_qgis.core.resources import default_scheme_path
from lcgan_qgis.core.storage.files import AtomicFile

log = logging.getLogger(__name__)
gdal.UseExceptions()

DEFAULT_SIZE_PX = 1024
DEFAULT_SEED = 0
EPSG_UTM12N = 32612
PIXEL_SIZE_M = 30.0
#: Upper-left corner in EPSG:32612 (a made-up place west of Zion; the landscape is procedural).
ORIGIN_M = (300000.0, 4160000.0)

# Target shares of the land (fractions of all pixels) for the classes placed by ranking a score field.
WATER_SHARE = 0.010
WETLAND_SHARE = 0.004
BARREN_SHARE = 0.07
FOREST_SHARE = 0.62  # of the land left after water, wetlands and barren: 41 + 42 + 43
DECIDUOUS_SHARE = 0.25  # of the forest
MIXED_SHARE = 0.025  # of the forest, on the deciduous/evergreen border
GRASSLAND_SHARE = 0.008


def value_noise(rng: np.random.Generator, shape: tuple[int, int], period_px: float) -> np.ndarray:
    """Smooth random field in [0, 1]: random values on a lattice of ``period_px`` spacing, smoothstep-interpolated."""
    rows, cols = shape
    grid = rng.random((int(rows / period_px) + 2, int(cols / period_px) + 2))

    def axis(n: int) -> tuple[np.ndarray, np.ndarray]:
        pos = np.arange(n, dtype=np.float64) / period_px
        i0 = np.floor(pos).astype(np.int64)
        t = pos - i0
        return i0, t * t * (3.0 - 2.0 * t)

    r0, rt = axis(rows)
    c0, ct = axis(cols)
    along_cols = grid[:, c0] * (1.0 - ct) + grid[:, c0 + 1] * ct
    return along_cols[r0] * (1.0 - rt)[:, None] + along_cols[r0 + 1] * rt[:, None]


def fbm(rng: np.random.Generator, shape: tuple[int, int], period_px: float, octaves: int,
        persistence: float = 0.5) -> np.ndarray:
    """Fractal sum of ``octaves`` value-noise layers (period halving, amplitude times ``persistence``), in [0, 1]."""
    total = np.zeros(shape)
    norm = 0.0
    amplitude = 1.0
    for octave in range(octaves):
        total += amplitude * value_noise(rng, shape, max(period_px / 2**octave, 1.0))
        norm += amplitude
        amplitude *= persistence
    return total / norm


def top_share(score: np.ndarray, eligible: np.ndarray, share_of_eligible: float) -> np.ndarray:
    """Mask of the ``share_of_eligible`` highest-scoring eligible pixels."""
    values = score[eligible]
    if values.size == 0 or share_of_eligible <= 0:
        return np.zeros_like(eligible)
    threshold = np.quantile(values, 1.0 - min(share_of_eligible, 1.0))
    return eligible & (score >= threshold)


def draw_polyline(mask: np.ndarray, points: np.ndarray, width_px: int = 1) -> None:
    """Set the pixels of a polyline of ``(row, col)`` points in ``mask`` (``width_px`` wide, clipped to it)."""
    rows, cols = mask.shape
    for (r0, c0), (r1, c1) in pairwise(points):
        n = int(max(abs(r1 - r0), abs(c1 - c0))) + 1
        rr = np.rint(np.linspace(r0, r1, n)).astype(np.int64)
        cc = np.rint(np.linspace(c0, c1, n)).astype(np.int64)
        for dr in range(width_px):
            for dc in range(width_px):
                r, c = rr + dr, cc + dc
                inside = (r >= 0) & (r < rows) & (c >= 0) & (c < cols)
                mask[r[inside], c[inside]] = True


def meandering_road(rng: np.random.Generator, start: np.ndarray, end: np.ndarray, step_px: float = 12.0) -> np.ndarray:
    """Points of a road from ``start`` to ``end`` (row, col) that wanders sideways like a valley road."""
    length = float(np.hypot(*(end - start)))
    n = max(int(length / step_px), 2)
    t = np.linspace(0.0, 1.0, n)
    direction = (end - start) / max(length, 1e-9)
    normal = np.array([-direction[1], direction[0]])
    wiggle = np.cumsum(rng.normal(0.0, step_px * 0.35, n))
    wiggle -= wiggle[0] + t * (wiggle[-1] - wiggle[0])  # pinned to zero at both ends
    return start + t[:, None] * (end - start) + wiggle[:, None] * normal


def generate_landcover(size_px: int | tuple[int, int] = DEFAULT_SIZE_PX, seed: int = DEFAULT_SEED,
                       scheme: ClassScheme | None = None) -> np.ndarray:
    """A procedural NLCD land-cover map.

    Args:
        size_px: side length, or ``(rows, cols)``, in pixels (at least 32 each way).
        seed: the random seed; the same seed always gives the same map.
        scheme: the class scheme whose codes are used (default: the bundled NLCD 2011 scheme); it must hold the
            NLCD codes 11, 21, 22, 23, 31, 41, 42, 43, 52, 71, 81, 82, 90, 95.

    Returns:
        ``(rows, cols)`` uint8 array of NLCD codes (no nodata).

    Raises:
        ValueError: if the size is too small or the scheme lacks an NLCD code.
    """
    rows, cols = (size_px, size_px) if isinstance(size_px, int) else size_px
    if rows < 32 or cols < 32:
        raise ValueError(f"The demo map needs at least 32 x 32 pixels, got {rows} x {cols}.")
    scheme = scheme or ClassScheme.load(default_scheme_path())
    needed = {11, 21, 22, 23, 31, 41, 42, 43, 52, 71, 81, 82, 90, 95}
    missing = sorted(needed - set(scheme.codes))
    if missing:
        raise ValueError(f"Class scheme '{scheme.name}' lacks the NLCD code(s) {missing} the demo map uses.")
    shape = (rows, cols)
    rng = np.random.default_rng(seed)
    scale = max(rows, cols) / 1024.0  # landscape features keep their size in pixels up to ~1024, then repeat

    elevation = fbm(rng, shape, 320.0 * min(scale, 1.0), 6)
    moisture = fbm(rng, shape, 200.0 * min(scale, 1.0), 5)
    detail = fbm(rng, shape, 16.0, 3, 0.7)  # fragments patch edges like the real map's speckle
    ridges = 1.0 - np.abs(2.0 * fbm(rng, shape, 48.0, 5, 0.6) - 1.0)  # near 1 along thin canyon lines
    upland = fbm(rng, shape, 120.0, 4)
    badlands = fbm(rng, shape, 400.0 * min(scale, 1.0), 2)  # where the canyon country is

    codes = np.full(shape, 52, dtype=np.uint8)  # shrub/scrub everywhere to start with
    free = np.ones(shape, dtype=bool)

    # Lakes in low basins, fringed by woody and emergent wetlands.
    basin = 0.65 * elevation + 0.35 * fbm(rng, shape, 60.0, 3)
    water = top_share(-basin, free, WATER_SHARE)
    codes[water] = 11
    free &= ~water
    fringe = top_share(-basin, free, WETLAND_SHARE / (1.0 - WATER_SHARE))
    codes[fringe] = np.where(detail[fringe] > 0.5, 90, 95)
    free &= ~fringe

    # Barren canyons and rock along ridged lines, more of them in the dry lowlands.
    canyon = ridges**4 * badlands**2 * (1.3 - elevation) + 0.08 * detail
    barren = top_share(canyon, free, BARREN_SHARE / free.mean())
    codes[barren] = 31
    free &= ~barren

    # Forest on the higher, moister ground; deciduous on the moist uplands, mixed along its border.
    forest_score = 0.45 * elevation + 0.25 * moisture + 0.30 * detail
    forest = top_share(forest_score, free, FOREST_SHARE)
    decid_score = 0.45 * upland + 0.30 * moisture + 0.25 * detail
    deciduous = top_share(decid_score, forest, DECIDUOUS_SHARE)
    mixed = top_share(decid_score, forest & ~deciduous, MIXED_SHARE / (1.0 - DECIDUOUS_SHARE))
    codes[forest] = 42
    codes[deciduous] = 41
    codes[mixed] = 43

    # Meadows of grassland where shrub land is moist.
    shrub = free & ~forest
    codes[top_share(moisture + 0.3 * detail, shrub, GRASSLAND_SHARE / max(shrub.mean(), 1e-9))] = 71

    _place_towns_and_roads(rng, codes, elevation, detail, water, scale)
    return codes


def _place_towns_and_roads(rng: np.random.Generator, codes: np.ndarray, elevation: np.ndarray, detail: np.ndarray,
                           water: np.ndarray, scale: float) -> None:
    """Towns (23 core, 22, 21 outskirts, with pasture 81 and crops 82 around) in low ground, joined by roads (21)."""
    rows, cols = codes.shape
    n_towns = max(2, int(round(4 * scale * scale))) if min(rows, cols) >= 128 else 1
    low = np.argwhere((elevation <= np.quantile(elevation, 0.35)) & ~water)
    centres = []
    for _ in range(n_towns * 20):
        if len(centres) == n_towns or low.size == 0:
            break
        candidate = low[rng.integers(len(low))].astype(np.float64)
        if all(np.hypot(*(candidate - c)) > 0.25 * min(rows, cols) for c in centres):
            centres.append(candidate)
    rr, cc = np.mgrid[0:rows, 0:cols]
    for centre in centres:
        radius = float(rng.uniform(10.0, 22.0)) * min(scale, 1.0) ** 0.5
        dist = np.hypot(rr - centre[0], cc - centre[1]) / radius + 0.8 * (detail - 0.5)
        farm_noise = value_noise(rng, codes.shape, 6.0)
        farmland = (dist >= 1.0) & (dist < 2.2) & ~water
        codes[farmland & (farm_noise > 0.62)] = 81
        codes[farmland & (farm_noise < 0.12)] = 82
        codes[(dist < 1.0) & ~water] = 21
        codes[(dist < 0.65) & ~water] = 22
        codes[(dist < 0.3) & ~water] = 23
    roads = np.zeros(codes.shape, dtype=bool)
    links = list(pairwise(centres))
    for centre in centres:  # each town also has a road leaving the map at the nearest edge
        edge_dists = [centre[0], rows - 1 - centre[0], centre[1], cols - 1 - centre[1]]
        side = int(np.argmin(edge_dists))
        exit_point = [np.array([0.0, centre[1]]), np.array([rows - 1.0, centre[1]]),
                      np.array([centre[0], 0.0]), np.array([centre[0], cols - 1.0])][side]
        links.append((centre, exit_point))
    for start, end in links:
        draw_polyline(roads, meandering_road(rng, start, end))
    codes[roads & ~water] = 21


def write_geotiff(codes: np.ndarray, path: str | Path, scheme: ClassScheme | None = None,
                  origin_m: tuple[float, float] = ORIGIN_M, pixel_size_m: float = PIXEL_SIZE_M,
                  epsg: int = EPSG_UTM12N, description: str = "") -> Path:
    """Write a land-cover code array as a tiled, compressed GeoTIFF with the scheme's colour table and class names.

    Args:
        codes: ``(rows, cols)`` uint8 land-cover codes.
        path: output file (its folder is created).
        scheme: colours and names (default: the bundled NLCD 2011 scheme); nodata is its ``nodata_code``.
        origin_m: upper-left corner ``(x, y)`` in the CRS.
        pixel_size_m: square pixel size in metres.
        epsg: the CRS.
        description: stored as the band description.

    Returns:
        The path written.

    Raises:
        OutputError: if the file cannot be written.
    """
    scheme = scheme or ClassScheme.load(default_scheme_path())
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"Cannot create the folder of {path}: {exc.strerror or exc}") from None
    try:
        with AtomicFile(path, sidecars=(".aux.xml",)) as tmp:  # class names live in the .aux.xml
            _write_codes(tmp, codes, scheme, origin_m, pixel_size_m, epsg, description)
    except RuntimeError as exc:
        raise OutputError(f"Cannot write the demo land-cover map {path}: {exc}") from None
    return path


def _write_codes(path: Path, codes: np.ndarray, scheme: ClassScheme, origin_m: tuple[float, float],
                 pixel_size_m: float, epsg: int, description: str) -> None:
    """:func:`write_geotiff`'s GeoTIFF, written at ``path`` (the temporary name)."""
    rows, cols = codes.shape
    ds = gdal.GetDriverByName("GTiff").Create(str(path), cols, rows, 1, gdal.GDT_Byte,
                                              options=list(GEOTIFF_CREATION_OPTIONS))
    try:
        ds.SetGeoTransform((origin_m[0], pixel_size_m, 0.0, origin_m[1], 0.0, -pixel_size_m))
        srs = osr.SpatialReference()
        srs.ImportFromEPSG(epsg)
        ds.SetProjection(srs.ExportToWkt())
        band = ds.GetRasterBand(1)
        band.SetNoDataValue(scheme.nodata_code)
        table = gdal.ColorTable()
        names = [""] * 256
        for cls in scheme.classes:
            table.SetColorEntry(cls.code, tuple(cls.rgba))
            names[cls.code] = cls.name
        band.SetRasterColorTable(table)
        band.SetRasterColorInterpretation(gdal.GCI_PaletteIndex)
        band.SetCategoryNames(names)
        if description:
            band.SetDescription(description)
        band.WriteArray(np.ascontiguousarray(codes, dtype=np.uint8))
    finally:
        ds = None  # closes and flushes the dataset, owned here


def make_demo_input(path: str | Path, size_px: int = DEFAULT_SIZE_PX, seed: int = DEFAULT_SEED) -> Path:
    """Generate the demo map and write it to ``path``; returns the path."""
    scheme = ClassScheme.load(default_scheme_path())
    codes = generate_landcover(size_px, seed, scheme)
    return write_geotiff(codes, path, scheme, description=f"lcgan procedural demo land cover, seed {seed}")


def class_shares(codes: np.ndarray, scheme: ClassScheme) -> dict[int, float]:
    """Fraction of pixels per scheme code (nodata excluded)."""
    valid = codes != scheme.nodata_code
    total = max(int(valid.sum()), 1)
    return {code: float((codes[valid] == code).sum()) / total for code in scheme.codes}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.demo_input", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("out/demo_landcover_input.tif"), help="output GeoTIFF")
    parser.add_argument("--size", type=int, default=DEFAULT_SIZE_PX, help="side length in pixels (default 1024)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed (default 0)")
    args = parser.parse_args(argv)
    try:
        path = make_demo_input(args.out, args.size, args.seed)
    except (ValueError, OSError) as exc:
        print(f"demo_input: {exc}", file=sys.stderr)
        return 2
    scheme = ClassScheme.load(default_scheme_path())
    codes = gdal.Open(str(path)).ReadAsArray()
    shares = ", ".join(f"{c}: {100 * s:.1f}%" for c, s in class_shares(codes, scheme).items() if s > 0)
    print(f"wrote {path} ({args.size} x {args.size} px, 30 m, EPSG:32612, seed {args.seed}); classes {shares}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
