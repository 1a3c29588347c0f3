"""Relief correlation: how much of an image's brightness is the shading of the terrain under it.

Real imagery of a canyon landscape is dominated by relief: lit and shaded slopes. A generator that paints only the
land-cover map shows none of it. The measure: the Pearson correlation, over the pixels of a mask, between the grey
brightness (mean of the bands) and a hillshade of the DEM, at the sun azimuth and elevation that fit that image best
(a grid search: azimuths every ``AZIMUTH_STEP_DEG``, elevations ``ELEVATIONS_DEG``, then a finer search around the
best). The hillshade is the plugin's own (:func:`lcgan_qgis.core.terrain.channels.derive`, the channel the
terrain-aware models read), so the measure and the model agree on what shading is. Reported for real and generated
imagery of the same ground and as generated / real; a flat painting gives about 0, the hillshade itself 1.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from lcgan_qgis.core.rasters.raster import Window
from lcgan_qgis.core.terrain.channels import TerrainDeriver, TerrainInputs

AZIMUTH_STEP_DEG = 30.0
ELEVATIONS_DEG = (15.0, 30.0, 45.0, 60.0, 75.0)
FINE_AZIMUTH_DEG = (-20.0, -10.0, 0.0, 10.0, 20.0)
FINE_ELEVATION_DEG = (-10.0, -5.0, 0.0, 5.0, 10.0)
_HILLSHADE = TerrainInputs(("hillshade",))


class Hillshades:
    """Hillshades of one DEM over the bounding box of a mask, one per sun position asked for (cached)."""

    def __init__(self, elevation_m: np.ndarray, mask: np.ndarray, pixel_size_m: tuple[float, float]) -> None:
        """``elevation_m``: ``(rows, cols)`` metres, NaN nodata; ``mask``: the pixels measured (same grid)."""
        rows, cols = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
        if rows.size == 0:
            raise ValueError("the relief mask selects no pixel.")
        self.window = Window(int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1))
        self.inside = mask[self.window.row_off:self.window.row_end, self.window.col_off:self.window.col_end]
        self.inside = self.inside & np.isfinite(
            elevation_m[self.window.row_off:self.window.row_end, self.window.col_off:self.window.col_end])
        self._z = np.asarray(elevation_m, dtype=np.float64)
        self._pixel = pixel_size_m
        self._cache: dict[tuple[float, float], np.ndarray] = {}

    def _read(self, window: Window) -> np.ndarray:
        return self._z[window.row_off:window.row_end, window.col_off:window.col_end]

    def values(self, azimuth_deg: float, elevation_deg: float) -> np.ndarray:
        """The hillshade ([-1, 1]) at the mask's pixels for one sun position."""
        key = (azimuth_deg % 360.0, elevation_deg)
        if key not in self._cache:
            deriver = TerrainDeriver(_HILLSHADE, self._read, self._z.shape[1], self._z.shape[0], self._pixel,
                                     key[0], elevation_deg)
            self._cache[key] = deriver.channels(self.window)[0][self.inside].astype(np.float64)
        return self._cache[key]

    def brightness(self, image: np.ndarray) -> np.ndarray:
        """The grey brightness (mean of the bands) of a ``(bands, rows, cols)`` image at the mask's pixels."""
        w = self.window
        return np.asarray(image[:, w.row_off:w.row_end, w.col_off:w.col_end], dtype=np.float64).mean(axis=0)[
            self.inside]


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    scale = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / scale) if scale > 0 else 0.0


def _best(grey_values: np.ndarray, shades: Hillshades,
          suns: Iterable[tuple[float, float]]) -> tuple[float, float, float]:
    scored = [(_correlation(grey_values, shades.values(az, el)), az % 360.0, el) for az, el in suns]
    return max(scored)


def best_fit(image: np.ndarray, shades: Hillshades) -> dict:
    """The correlation of ``image``'s brightness with the hillshade at the sun that fits it best, and that sun."""
    g = shades.brightness(image)
    coarse = [(az, el) for az in np.arange(0.0, 360.0, AZIMUTH_STEP_DEG) for el in ELEVATIONS_DEG]
    _, az0, el0 = _best(g, shades, coarse)
    fine = [(az0 + da, float(np.clip(el0 + de, 5.0, 85.0))) for da in FINE_AZIMUTH_DEG for de in FINE_ELEVATION_DEG]
    corr, az, el = _best(g, shades, fine)
    return {"correlation": round(corr, 4), "sun_azimuth_deg": az, "sun_elevation_deg": el}


def relief_correlation(generated: np.ndarray, real: np.ndarray, elevation_m: np.ndarray, mask: np.ndarray,
                       pixel_size_m: tuple[float, float]) -> dict:
    """Relief correlation of generated and real imagery of the same ground (``(bands, rows, cols)``, any units).

    Returns ``real`` and ``generated`` (each: correlation at its own best sun, and that sun), ``ratio``
    (generated / real) and ``generated_at_real_sun`` (the generated imagery's correlation under the real sun).
    """
    shades = Hillshades(elevation_m, mask, pixel_size_m)
    ref, gen = best_fit(real, shades), best_fit(generated, shades)
    at_real = _correlation(shades.brightness(generated), shades.values(ref["sun_azimuth_deg"],
                                                                        ref["sun_elevation_deg"]))
    ratio = gen["correlation"] / ref["correlation"] if ref["correlation"] > 0 else None
    return {"real": ref, "generated": gen, "ratio": None if ratio is None else round(ratio, 3),
            "generated_at_real_sun": round(at_real, 4), "pixels": int(shades.inside.sum()),
            "definition": "Pearson correlation of grey brightness with the plugin's hillshade of the DEM at the sun "
                          "(grid search) that fits each image best; generated / real"}
