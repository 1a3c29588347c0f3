"""A "new region and scheme" made from the Zion sample, for the fine-tuning check, tests and docs.

The NLCD 2011 map on its own grid (EPSG:26912, 31.5 m: the imagery is EPSG:32612, 30 m, so the run warps it)
regrouped into 7 classes the bundled models never had: water, developed, barren, forest, shrub,
herbaceous/planted, wetland. The scheme JSON lists the NLCD codes each class groups (``includes``), which is how the
run carries the base model's classes over and scores the base model in the new scheme.

    python -m training.finetune.example ../shared/data/zion /tmp/zion7
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

SEVEN = [
    (1, "Water", "#466b9f", [11, 12]),
    (2, "Developed", "#d99282", [21, 22, 23, 24]),
    (3, "Barren", "#b3ac9f", [31]),
    (4, "Forest", "#1c5f2c", [41, 42, 43]),
    (5, "Shrub", "#ccb879", [51, 52]),
    (6, "Herbaceous and planted", "#dcd939", [71, 72, 73, 74, 81, 82]),
    (7, "Wetland", "#6c9fb8", [90, 95]),
]


#: The held-out south (never seen by the bundled models: docs/training.md) cut into a west and an east half with a
#: 480 m (16 px) gap: the region the models never saw, for training on one half and validating on the other.
SOUTH_Y = (4121955.0, 4130000.0)
SOUTH_HALVES = {"south_west": (301905.0, 318585.0), "south_east": (319065.0, 335745.0)}


def scheme_json() -> dict:
    return {"name": "Zion 7 groups (example)", "nodata_code": 255,
            "classes": [{"code": c, "name": n, "color": col, "includes": inc} for c, n, col, inc in SEVEN]}


#: "Another sensor": the Landsat bands stretched (2-98 %), mixed (less saturated, as a broad-band camera) and bent by
#: per-band gamma beyond what the bundled models' training jitter covered (gamma exp(+-0.2)), stored as 8 bits.
SENSOR_MIX = np.array([[0.7, 0.3, 0.0], [0.2, 0.6, 0.2], [0.0, 0.3, 0.7]])
SENSOR_GAMMA = (0.5, 0.8, 1.6)


def other_sensor(zion: str | Path, out: str | Path) -> Path:
    """``other_sensor.tif``: the Zion imagery as another sensor would record it (see :data:`SENSOR_MIX`)."""
    import rasterio

    with rasterio.open(Path(zion) / "landsat8_rgb.tif") as src:
        pixels = src.read().astype(np.float64)
        profile = src.profile
    valid = (pixels > 0).all(axis=0)
    stretched = np.zeros_like(pixels)
    for b in range(3):
        lo, hi = np.percentile(pixels[b][valid], (2, 98))
        stretched[b] = np.clip((pixels[b] - lo) / (hi - lo), 0, 1)
    mixed = np.einsum("ij,jhw->ihw", SENSOR_MIX, stretched)
    bent = np.stack([mixed[b] ** SENSOR_GAMMA[b] for b in range(3)])
    eight = np.where(valid, np.clip(np.round(1 + bent * 254), 1, 255), 0).astype(np.uint8)
    profile.update(dtype="uint8", nodata=0)
    path = Path(out) / "other_sensor.tif"
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(eight)
    return path


def build(zion: str | Path, out: str | Path) -> dict[str, Path]:
    """Write ``zion7.tif``, ``zion7.json`` into ``out``; returns the paths (plus the imagery and the areas)."""
    import rasterio

    zion, out = Path(zion), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    lut = np.full(256, 255, dtype=np.uint8)
    for code, _n, _c, includes in SEVEN:
        lut[includes] = code
    with rasterio.open(zion / "nlcd2011.tif") as src:
        profile = src.profile
        regrouped = lut[src.read(1)]
    profile.update(nodata=255, dtype="uint8", count=1)
    with rasterio.open(out / "zion7.tif", "w", **profile) as dst:
        dst.write(regrouped, 1)
        dst.write_colormap(1, {c: (*(int(col[i:i + 2], 16) for i in (1, 3, 5)), 255)
                               for c, _n, col, _i in SEVEN})
    (out / "zion7.json").write_text(json.dumps(scheme_json(), indent=1), encoding="utf-8")
    areas = Path(__file__).resolve().parents[1] / "configs" / "zion_areas"
    for name, (x0, x1) in SOUTH_HALVES.items():
        ring = [[x0, SOUTH_Y[0]], [x1, SOUTH_Y[0]], [x1, SOUTH_Y[1]], [x0, SOUTH_Y[1]], [x0, SOUTH_Y[0]]]
        (out / f"{name}.geojson").write_text(json.dumps({
            "type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32612"}},
            "features": [{"type": "Feature", "properties": {},
                          "geometry": {"type": "Polygon", "coordinates": [ring]}}]}),
            encoding="utf-8")
    return {"landcover": out / "zion7.tif", "scheme": out / "zion7.json", "imagery": zion / "landsat8_rgb.tif",
            "train_area": areas / "train_north.geojson", "val_area": areas / "heldout_south.geojson",
            "south_west": out / "south_west.geojson", "south_east": out / "south_east.geojson",
            "other_sensor": other_sensor(zion, out)}


if __name__ == "__main__":
    for key, path in build(sys.argv[1], sys.argv[2]).items():
        sys.stdout.write(f"{key}: {path}\n")
