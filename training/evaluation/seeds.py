"""Seed diversity of a land cover -> RGB generator: two noise seeds, how different the texture, how equal the layout.

The generator paints texture from position-keyed noise (:mod:`lcgan_qgis.core.run.noise`); the run's seed
(``Rendering.seed``, the ``SEED`` users set) offsets its stream. The generator runs once per seed through the
plugin's job, at the precision a user gets; an RGB -> land cover model (the reader) reads both renders. Measured
inside a mask:

* ``mean_abs_difference``: mean absolute difference between the two renders, per band, on the 0-255 display scale
  the generator writes (0 = the seed changes nothing);
* ``layout_agreement``: the share of pixels where an RGB -> land cover model (the reader) gives the same class for
  both renders (1 = the layout never changes with the seed).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lcgan_qgis.core.model.contract import Radiometry

from .rasters import Raster, read_raster, translate_file, write_image
from .scores import generated_to_image_units


def render_seeds(model_path: Path, landcover_path: Path, like: Raster, radiometry: Radiometry,
                 reader_path: Path, work: Path, seeds: tuple[int, int] = (1, 2), elevation_path: Path | None = None,
                 device: str = "cpu") -> dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per seed: ``(generated uint8 (3, rows, cols), reader's land-cover codes (rows, cols), valid)``."""
    out = {}
    for seed in seeds:
        rgb_path = work / f"seed{seed}_rgb.tif"
        translate_file(model_path, landcover_path, rgb_path, device, elevation_path=elevation_path, seed=seed)
        rgb = read_raster(rgb_path)
        units = generated_to_image_units(rgb.pixels[:3], radiometry)
        dn_path = work / f"seed{seed}_rgb_units.tif"
        write_image(dn_path, np.where(rgb.valid, np.clip(np.rint(units), 1, 65535), 0).astype(np.uint16), like)
        lc_path = work / f"seed{seed}_lc.tif"
        translate_file(reader_path, dn_path, lc_path, device)
        lc = read_raster(lc_path)
        out[seed] = (rgb.pixels[:3], lc.pixels[0], rgb.valid & lc.valid)
    return out


def seed_diversity(renders: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]], mask: np.ndarray) -> dict:
    """Mean absolute difference and layout agreement of two renders (:func:`render_seeds`) inside ``mask``."""
    (seed_a, (rgb_a, lc_a, ok_a)), (seed_b, (rgb_b, lc_b, ok_b)) = list(renders.items())[:2]
    m = mask & ok_a & ok_b
    if not m.any():
        raise ValueError("no valid pixel is common to both renders inside the mask.")
    diff = np.abs(rgb_a.astype(np.float64) - rgb_b.astype(np.float64))[:, m].mean(axis=1)
    return {"seeds": [seed_a, seed_b], "mean_abs_difference": [round(float(v), 2) for v in diff],
            "mean_abs_difference_units": "0-255 display scale of the generator's output, per band",
            "layout_agreement": round(float((lc_a == lc_b)[m].mean()), 4), "pixels": int(m.sum())}
