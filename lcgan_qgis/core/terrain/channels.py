"""Terrain channels from elevation: hillshade, slope and local relative elevation. Pure numpy, no I/O.

Real imagery of mountains is dominated by relief (lit and shaded slopes, bright ridges, dark canyons), which a
land-cover map does not carry. A terrain-aware land cover -> RGB model reads, after its one-hot classes, channels
derived here from a DEM; training (:mod:`training.data`) and inference (:mod:`lcgan_qgis.core.terrain.elevation`) both
call :meth:`TerrainDeriver.channels`, so the model sees the same numbers in both.

Every channel lies in [-1, 1] and depends neither on absolute height nor on the DEM's units (elevations are
converted to metres with the contract's ``dem_metres_per_unit``, pixels are measured in metres):

* ``hillshade``: ``2 * max(0, n . s) - 1`` with ``n`` the unit surface normal and ``s`` the unit vector towards the
  sun (azimuth clockwise from north, elevation above the horizon). This is the usual hillshade (Burrough and
  McDonnell 1998, "Principles of GIS", ch. 8: ``cos Z cos S + sin Z sin S cos(A - aspect)``, Z the sun's zenith
  angle, S the slope) written as a dot product; flat ground gives ``2 sin(elevation) - 1``. Only local shading:
  cast shadows are not modelled.
* ``slope``: ``2 sin(S) - 1`` (flat -1, 30 degrees 0, vertical +1).
* ``relative_elevation``: ``x / sqrt(1 + x^2)`` with ``x = (z - mean) / relief_scale_m``, ``mean`` the mean of
  the valid elevations in a square of side ``2 r + 1`` px around the pixel, ``r = round(relief_radius_m / pixel
  size)``: ridges > 0, valley floors < 0, a plane 0.

Gradients use Horn's 3x3 weights (Horn 1981, "Hill shading and the reflectance map", as in ``gdaldem``). A window
is derived from its pixels plus a halo of :meth:`TerrainDeriver.halo_px` pixels read around it; beyond the edges
of the raster the elevation is continued by point reflection (``2 z_edge - z_inside``, which continues a plane
exactly), so a pixel's channels depend only on the raster, never on the window it was cut in: tiled == untiled,
bit for bit (only +, -, *, / and sqrt, which IEEE 754 rounds exactly, and integer box sums of millimetres).

Nodata (NaN) elevation is flat terrain: a nodata pixel gets the channels of flat ground, a nodata neighbour counts
as the centre's own height in the gradient and is left out of the local mean.

The default sun position is the Zion sample's scene (:data:`ZION_SUN_AZIMUTH_DEG`, :data:`ZION_SUN_ELEVATION_DEG`),
from :func:`solar_position`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np

from ..model.terrain_inputs import TerrainInputs, check_sun
from ..rasters.raster import Window

#: Sun over the Zion sample (centre 37.371 N, 113.046 W) at the Landsat 8 scene LC80380342015230, 2015-08-18
#: 18:00 UTC, by :func:`solar_position`: the contract's default sun
#: (:data:`~lcgan_qgis.core.model.terrain_inputs.ZION_SUN_AZIMUTH_DEG`, ``ZION_SUN_ELEVATION_DEG``).
ZION_SCENE_TIME_UTC = datetime(2015, 8, 18, 18, 0, 0, tzinfo=timezone.utc)
ZION_CENTRE_LAT_LON = (37.371, -113.046)
_MM_PER_M = 1000.0


def flat_channels(inputs: TerrainInputs, sun_elevation_deg: float) -> np.ndarray:
    """The channel values of flat ground (also given to nodata pixels), ``(C,)`` float64."""
    flat = {"hillshade": 2.0 * math.sin(math.radians(sun_elevation_deg)) - 1.0, "slope": -1.0,
            "relative_elevation": 0.0}
    return np.array([flat[c] for c in inputs.channels])


def halo_px(inputs: TerrainInputs, pixel_size_m: tuple[float, float]) -> int:
    """Pixels read around a window so that its channels equal those of the whole raster."""
    ry, rx = relief_radius_px(inputs, pixel_size_m)
    return max(1, ry, rx) if "relative_elevation" in inputs.channels else 1


def relief_radius_px(inputs: TerrainInputs, pixel_size_m: tuple[float, float]) -> tuple[int, int]:
    """``(rows, cols)`` radius of the local mean in pixels (at least 1)."""
    dx, dy = pixel_size_m
    return max(1, round(inputs.relief_radius_m / dy)), max(1, round(inputs.relief_radius_m / dx))


def sun_vector(azimuth_deg: float, elevation_deg: float) -> tuple[float, float, float]:
    """Unit vector towards the sun as ``(east, north, up)``."""
    az, el = math.radians(azimuth_deg), math.radians(elevation_deg)
    return math.sin(az) * math.cos(el), math.cos(az) * math.cos(el), math.sin(el)


def derive(elevation_m: np.ndarray, halo: int, pixel_size_m: tuple[float, float], inputs: TerrainInputs,
           sun_azimuth_deg: float | None = None, sun_elevation_deg: float | None = None) -> np.ndarray:
    """Terrain channels of the inner pixels of a block of elevations.

    Args:
        elevation_m: ``(h + 2 halo, w + 2 halo)`` elevations in metres, NaN for nodata.
        halo: pixels around the inner ``(h, w)`` (at least :func:`halo_px`).
        pixel_size_m: ``(x, y)`` pixel size in metres on the ground (positive).
        inputs: which channels and their parameters.
        sun_azimuth_deg, sun_elevation_deg: the sun (None: the model's).

    Returns:
        ``(len(inputs.channels), h, w)`` float32 in [-1, 1].
    """
    azimuth = inputs.sun_azimuth_deg if sun_azimuth_deg is None else sun_azimuth_deg
    elevation = inputs.sun_elevation_deg if sun_elevation_deg is None else sun_elevation_deg
    check_sun(azimuth, elevation, "terrain")
    need = halo_px(inputs, pixel_size_m)
    if halo < need:
        raise ValueError(f"halo {halo} px is smaller than the {need} px these channels need")
    z = np.asarray(elevation_m, dtype=np.float64)
    h, w = z.shape[0] - 2 * halo, z.shape[1] - 2 * halo
    if h < 1 or w < 1:
        raise ValueError(f"block {z.shape} leaves no pixel inside a {halo} px halo")

    def shifted(di: int, dj: int) -> np.ndarray:
        return z[halo + di:halo + di + h, halo + dj:halo + dj + w]

    centre = shifted(0, 0)
    valid = np.isfinite(centre)
    out = np.empty((len(inputs.channels), h, w), dtype=np.float64)
    p = q = None
    if "hillshade" in inputs.channels or "slope" in inputs.channels:
        p, q = _horn_gradient(shifted, centre, pixel_size_m)
    for k, name in enumerate(inputs.channels):
        if name == "hillshade":
            east, north, up = sun_vector(azimuth, elevation)
            lit = (up - p * east - q * north) / np.sqrt(1.0 + p * p + q * q)
            out[k] = 2.0 * np.maximum(lit, 0.0) - 1.0
        elif name == "slope":
            g2 = p * p + q * q
            out[k] = 2.0 * np.sqrt(g2 / (1.0 + g2)) - 1.0
        else:
            x = _relative_elevation_m(z, halo, relief_radius_px(inputs, pixel_size_m)) / inputs.relief_scale_m
            out[k] = x / np.sqrt(1.0 + x * x)
    flat = flat_channels(inputs, elevation)
    out[:, ~valid] = flat[:, None]
    return out.astype(np.float32)


def _horn_gradient(shifted: Callable[[int, int], np.ndarray], centre: np.ndarray,
                   pixel_size_m: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """``(dz/dx east, dz/dy north)`` by Horn's weights; a nodata neighbour counts as the centre's height."""

    def at(di: int, dj: int) -> np.ndarray:
        v = shifted(di, dj)
        return np.where(np.isfinite(v), v, centre)

    nw, n, ne = at(-1, -1), at(-1, 0), at(-1, 1)
    w, e = at(0, -1), at(0, 1)
    sw, s, se = at(1, -1), at(1, 0), at(1, 1)
    dx, dy = pixel_size_m
    p = ((ne + 2.0 * e + se) - (nw + 2.0 * w + sw)) / (8.0 * dx)
    q = ((nw + 2.0 * n + ne) - (sw + 2.0 * s + se)) / (8.0 * dy)  # rows run south, so north minus south
    return np.nan_to_num(p), np.nan_to_num(q)


def _relative_elevation_m(z: np.ndarray, halo: int, radius_px: tuple[int, int]) -> np.ndarray:
    """Inner pixels' elevation minus the mean of the valid elevations in the ``(2 ry + 1) x (2 rx + 1)`` box.

    Sums are taken over whole millimetres in int64 (exact, so the result does not depend on where the block
    starts); nodata (NaN) pixels are left out of the mean.
    """
    ry, rx = radius_px
    valid = np.isfinite(z)
    mm = np.where(valid, np.rint(np.where(valid, z, 0.0) * _MM_PER_M), 0.0).astype(np.int64)
    h, w = z.shape[0] - 2 * halo, z.shape[1] - 2 * halo
    rows = slice(halo - ry, halo - ry + h + 2 * ry)
    cols = slice(halo - rx, halo - rx + w + 2 * rx)
    total = _box_sum(mm[rows, cols], ry, rx)
    count = _box_sum(valid[rows, cols].astype(np.int64), ry, rx)
    centre_mm = mm[halo:halo + h, halo:halo + w]
    with np.errstate(invalid="ignore", divide="ignore"):
        return (centre_mm * count - total) / (np.maximum(count, 1) * _MM_PER_M)


def _box_sum(values: np.ndarray, ry: int, rx: int) -> np.ndarray:
    """Sums of ``(2 ry + 1) x (2 rx + 1)`` boxes, one per inner pixel of ``values`` (integer, exact)."""
    c = np.zeros((values.shape[0] + 1, values.shape[1] + 1), dtype=np.int64)
    np.cumsum(np.cumsum(values, axis=0), axis=1, out=c[1:, 1:])
    ky, kx = 2 * ry + 1, 2 * rx + 1
    return c[ky:, kx:] - c[:-ky, kx:] - c[ky:, :-kx] + c[:-ky, :-kx]


def halo_window(window: Window, halo: int, width: int, height: int) -> tuple[Window, tuple[int, int, int, int]]:
    """The part of ``window`` grown by ``halo`` that lies in a ``width`` x ``height`` raster, and the padding
    ``(top, bottom, left, right)`` still needed outside the raster."""
    c0, r0 = max(0, window.col_off - halo), max(0, window.row_off - halo)
    c1, r1 = min(width, window.col_end + halo), min(height, window.row_end + halo)
    pads = (r0 - (window.row_off - halo), window.row_end + halo - r1, c0 - (window.col_off - halo),
            window.col_end + halo - c1)
    return Window(c0, r0, c1 - c0, r1 - r0), pads


def continue_outside(block: np.ndarray, pads: tuple[int, int, int, int]) -> np.ndarray:
    """Continue elevations beyond the raster's edges by point reflection (``2 z_edge - z_inside``; NaN stays NaN).

    A plane continues as the same plane, so slope and shading hold up to the edge. A block of one pixel along an
    axis is continued flat.
    """
    top, bottom, left, right = pads
    if not any(pads):
        return block
    z = np.asarray(block, dtype=np.float64)
    for axis, before, after in ((0, top, bottom), (1, left, right)):
        if before or after:
            mode = "reflect" if z.shape[axis] > 1 else "edge"
            widths = [(0, 0), (0, 0)]
            widths[axis] = (before, after)
            z = np.pad(z, widths, mode=mode, **({"reflect_type": "odd"} if mode == "reflect" else {}))
    return z


@dataclass(frozen=True)
class TerrainDeriver:
    """Terrain channels of any window of one elevation raster (training and the engine both use this).

    Attributes:
        inputs: the model's terrain inputs.
        read_metres: ``window -> (h, w)`` float elevations in metres (NaN nodata) of a window inside the raster.
        width, height: the raster's size in pixels.
        pixel_size_m: ``(x, y)`` pixel size in metres.
        sun_azimuth_deg, sun_elevation_deg: the sun for the hillshade.
    """

    inputs: TerrainInputs
    read_metres: Callable[[Window], np.ndarray]
    width: int
    height: int
    pixel_size_m: tuple[float, float]
    sun_azimuth_deg: float
    sun_elevation_deg: float

    @property
    def halo_px(self) -> int:
        return halo_px(self.inputs, self.pixel_size_m)

    def channels(self, window: Window) -> np.ndarray:
        """``(C, window.height, window.width)`` float32 terrain channels of ``window``."""
        halo = self.halo_px
        inside, pads = halo_window(window, halo, self.width, self.height)
        block = continue_outside(self.read_metres(inside), pads)
        return derive(block, halo, self.pixel_size_m, self.inputs, self.sun_azimuth_deg, self.sun_elevation_deg)


def elevation_metres(raw: np.ndarray, nodata: float | None, metres_per_unit: float) -> np.ndarray:
    """DEM values -> float64 metres with NaN where the value is the nodata value (or already NaN)."""
    z = raw.astype(np.float64) * metres_per_unit
    if nodata is not None and not math.isnan(nodata):
        z[raw == nodata] = np.nan
    return z


def solar_position(when: datetime, latitude_deg: float, longitude_deg: float) -> tuple[float, float]:
    """Sun ``(azimuth, elevation)`` in degrees (azimuth clockwise from north, geometric elevation: no refraction).

    The NOAA solar calculator's equations (NOAA Global Monitoring Laboratory, "General Solar Position
    Calculations", after Meeus 1991, "Astronomical Algorithms"): mean anomaly and equation of centre, apparent
    longitude, obliquity, declination, equation of time, hour angle. Accurate to about 0.01 degree for 1950-2050.

    Args:
        when: the time (naive datetimes are taken as UTC).
        latitude_deg: north positive.
        longitude_deg: east positive (Zion: -113.0).
    """
    if when.tzinfo is not None:
        when = when.astimezone(timezone.utc).replace(tzinfo=None)
    t = (_julian_day(when) - 2451545.0) / 36525.0
    rad = math.radians
    mean_long = (280.46646 + t * (36000.76983 + t * 0.0003032)) % 360.0
    anomaly = 357.52911 + t * (35999.05029 - 0.0001537 * t)
    ecc = 0.016708634 - t * (0.000042037 + 0.0000001267 * t)
    centre = (math.sin(rad(anomaly)) * (1.914602 - t * (0.004817 + 0.000014 * t))
              + math.sin(rad(2 * anomaly)) * (0.019993 - 0.000101 * t) + math.sin(rad(3 * anomaly)) * 0.000289)
    omega = 125.04 - 1934.136 * t
    apparent_long = mean_long + centre - 0.00569 - 0.00478 * math.sin(rad(omega))
    obliquity = (23.0 + (26.0 + (21.448 - t * (46.815 + t * (0.00059 - t * 0.001813))) / 60.0) / 60.0
                 + 0.00256 * math.cos(rad(omega)))
    declination = math.asin(math.sin(rad(obliquity)) * math.sin(rad(apparent_long)))
    y = math.tan(rad(obliquity / 2.0)) ** 2
    eot_min = 4.0 * math.degrees(
        y * math.sin(2 * rad(mean_long)) - 2 * ecc * math.sin(rad(anomaly))
        + 4 * ecc * y * math.sin(rad(anomaly)) * math.cos(2 * rad(mean_long))
        - 0.5 * y * y * math.sin(4 * rad(mean_long)) - 1.25 * ecc * ecc * math.sin(2 * rad(anomaly)))
    minutes = when.hour * 60.0 + when.minute + (when.second + when.microsecond / 1e6) / 60.0
    hour_angle = rad(((minutes + eot_min + 4.0 * longitude_deg) % 1440.0) / 4.0 - 180.0)
    lat = rad(latitude_deg)
    cos_zenith = (math.sin(lat) * math.sin(declination)
                  + math.cos(lat) * math.cos(declination) * math.cos(hour_angle))
    elevation = 90.0 - math.degrees(math.acos(max(-1.0, min(1.0, cos_zenith))))
    azimuth = math.degrees(math.atan2(math.sin(hour_angle), math.cos(hour_angle) * math.sin(lat)
                                      - math.tan(declination) * math.cos(lat))) + 180.0
    return azimuth % 360.0, elevation


def _julian_day(when: datetime) -> float:
    """Julian day of a UTC datetime (Meeus 1991, ch. 7; Gregorian calendar)."""
    year, month = when.year, when.month
    day = when.day + (when.hour + (when.minute + (when.second + when.microsecond / 1e6) / 60.0) / 60.0) / 24.0
    if month <= 2:
        year, month = year - 1, month + 12
    century = year // 100
    return (math.floor(365.25 * (year + 4716)) + math.floor(30.6001 * (month + 1)) + day
            + 2 - century + century // 4 - 1524.5)
