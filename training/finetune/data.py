"""Fine-tuning data: imagery with labels on its grid, the training and validation areas, and window sampling.

Every land-cover raster (any grid or CRS) is warped onto each imagery raster's grid with nearest-neighbour
resampling; polygon labels (a vector layer with a class field) are burnt onto the same grid. Pixels without a label
(nodata, outside the land cover, outside every polygon) hold -1 and are ignored by the losses. The imagery is
normalised the way the engine will read it (the base contract's percentile radiometry, computed on the raster by the
core's own :func:`~lcgan_qgis.core.run.preprocess.image_percentiles`). Rasters are held in memory: fine-tuning is
meant for a region of a few thousand pixels a side.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.features import geometry_mask, rasterize
from rasterio.warp import Resampling, reproject
from shapely.geometry import box, mapping

from lcgan_qgis.core.errors import InputRasterError
from lcgan_qgis.core.model.contract import Radiometry
from lcgan_qgis.core.model.scheme import ClassScheme

from ..areas import Areas, load_areas
from ..errors import TrainingError

log = logging.getLogger(__name__)

MAX_PIXELS = 64 * 2**20  # per imagery raster held in memory
SPLIT_GAP_PX = 16  # pixels left out between the training and the validation strip of an automatic split


@dataclass
class Scene:
    """One imagery raster with its labels and areas on its grid."""

    name: str
    image: np.ndarray  # (bands, H, W) float32 in [-1, 1], 0 where nodata
    labels: np.ndarray  # (H, W) int64 class indices, -1 = no label
    train: np.ndarray  # (H, W) bool: inside the training area
    val: np.ndarray  # (H, W) bool: inside the validation area
    transform: Any
    crs: Any
    low: tuple[float, ...]
    high: tuple[float, ...]
    sources: list[str] = field(default_factory=list)

    @property
    def labelled(self) -> np.ndarray:
        return self.labels >= 0


def read_image(path: str, bands: list[int], radiometry: Radiometry) -> tuple[np.ndarray, np.ndarray, Any, Any,
                                                                                tuple[float, ...], tuple[float, ...]]:
    """Imagery -> ``(normalised (bands, H, W), valid (H, W), transform, crs, low, high)`` as the engine reads it."""
    from lcgan_qgis.core.rasters.gdal_io import GdalReader
    from lcgan_qgis.core.rasters.validity import image_valid
    from lcgan_qgis.core.run.preprocess import image_percentiles

    if not Path(path).is_file():
        raise InputRasterError(f"Imagery file not found: {path}")
    with rasterio.open(path) as ds:
        if ds.width * ds.height > MAX_PIXELS:
            raise InputRasterError(f"{path}: {ds.width} x {ds.height} px is more than fine-tuning holds in memory "
                                   f"({MAX_PIXELS / 2**20:.0f} Mpx); clip it to your region first.")
        past = [b for b in bands if not 1 <= b <= ds.count]
        if past:
            raise InputRasterError(f"{path}: band(s) {past} asked for, the raster has {ds.count}.")
        pixels = ds.read(bands)
        nodata = tuple(ds.nodatavals[b - 1] for b in bands)
        transform, crs = ds.transform, ds.crs
    if crs is None:
        raise InputRasterError(f"{path}: the imagery has no CRS; fine-tuning needs georeferenced rasters.")
    with GdalReader(path) as reader:
        low, high, n = image_percentiles(reader, bands, nodata, radiometry.percentiles)
    if not n or any(not hi > lo for lo, hi in zip(low, high, strict=True)):
        raise InputRasterError(f"{path}: no contrast or no valid pixel in bands {bands}.")
    valid = image_valid(pixels, nodata, None)
    x = radiometry.normalize(pixels, low, high)
    x[:, ~valid] = 0.0
    return x, valid, transform, crs, low, high


def warp_landcover(path: str, scheme: ClassScheme, shape: tuple[int, int], transform: Any, crs: Any,
                   substitutes: dict[int, int]) -> np.ndarray:
    """A land-cover raster on the imagery grid as class indices (-1: no label); unknown codes raise one line."""
    if not Path(path).is_file():
        raise InputRasterError(f"Land-cover file not found: {path}")
    with rasterio.open(path) as ds:
        if ds.count != 1 or ds.dtypes[0] not in ("uint8", "uint16", "int16", "int32", "uint32", "int8"):
            raise InputRasterError(f"{path}: land cover must be one band of integer class codes, found {ds.count} "
                                   f"band(s) of {ds.dtypes[0]}.")
        dst = np.full(shape, -1, dtype=np.int32)
        reproject(rasterio.band(ds, 1), dst, dst_transform=transform, dst_crs=crs, dst_nodata=-1,
                  src_nodata=ds.nodata, resampling=Resampling.nearest)
    codes = dst.astype(np.int64)
    nodata = (codes < 0) | (codes == scheme.nodata_code)
    for code, target in substitutes.items():
        codes[codes == code] = target
    present = set(np.unique(codes[~nodata]).tolist())
    unknown = sorted(present - set(scheme.codes))
    if unknown:
        raise InputRasterError(f"{path}: code(s) {unknown} are not in the class scheme '{scheme.name}' (codes "
                               f"{list(scheme.codes)}); give a --scheme that has them.")
    indices = np.full(shape, -1, dtype=np.int64)
    if (~nodata).any():
        lut = {c: i for i, c in enumerate(scheme.codes)}
        flat = codes[~nodata]
        indices[~nodata] = np.vectorize(lut.__getitem__, otypes=[np.int64])(flat) if flat.size < 1000 else \
            _lookup(flat, scheme.codes)
    return indices


def _lookup(codes: np.ndarray, table: tuple[int, ...]) -> np.ndarray:
    order = np.argsort(table)
    sorted_codes = np.asarray(table)[order]
    return order[np.searchsorted(sorted_codes, codes)]


def burn_polygons(path: str, field_name: str, scheme: ClassScheme, shape: tuple[int, int], transform: Any,
                  crs: Any) -> np.ndarray:
    """Polygon labels on the imagery grid: the class (code, or class name) of ``field_name``; -1 outside."""
    from osgeo import ogr
    from rasterio.crs import CRS
    from rasterio.warp import transform_geom
    from shapely import wkt

    source = ogr.Open(str(path)) if Path(path).is_file() else None
    if source is None:
        raise InputRasterError(f"Label polygons not found or unreadable: {path}")
    layer = source.GetLayer(0)
    if layer.FindFieldIndex(field_name, True) < 0:
        names = [layer.GetLayerDefn().GetFieldDefn(i).GetName() for i in range(layer.GetLayerDefn().GetFieldCount())]
        raise InputRasterError(f"{path}: no field {field_name!r}; fields: {names}.")
    srs = layer.GetSpatialRef()
    layer_crs = CRS.from_wkt(srs.ExportToWkt()) if srs is not None else None
    by_name = {c.name.lower(): i for i, c in enumerate(scheme.classes)}
    by_code = {c.code: i for i, c in enumerate(scheme.classes)}
    shapes = []
    for feature in layer:
        geom = feature.GetGeometryRef()
        value = feature.GetField(field_name)
        if geom is None or value is None:
            continue
        index = by_code.get(int(value)) if str(value).strip().lstrip("-").isdigit() else by_name.get(
            str(value).strip().lower())
        if index is None:
            raise InputRasterError(f"{path}: {field_name} = {value!r} is neither a code nor a class name of the "
                                   f"scheme '{scheme.name}' ({list(scheme.codes)}).")
        shape_json = json.loads(geom.ExportToJson())
        if layer_crs is not None and layer_crs != crs:
            shape_json = transform_geom(layer_crs, crs, shape_json)
        shapes.append((wkt.loads(wkt.dumps(_shape(shape_json))), index))
    source = None
    if not shapes:
        raise InputRasterError(f"{path}: no polygon with a value in {field_name!r}.")
    burnt = rasterize(((mapping(g), i) for g, i in shapes), out_shape=shape, transform=transform, fill=-1,
                      dtype="int32")
    return burnt.astype(np.int64)


def _shape(geojson: dict[str, Any]) -> Any:
    from shapely.geometry import shape

    return shape(geojson)


def area_mask(areas: Areas, shape: tuple[int, int], transform: Any, crs: Any) -> np.ndarray:
    """Pixels whose centres lie inside ``areas``."""
    return geometry_mask([areas.in_crs(crs).context], out_shape=shape, transform=transform, invert=True)


def split_east(labelled: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int, int]]:
    """An automatic spatial split: the eastern quarter of the labelled columns validates, the rest trains, with a
    gap of :data:`SPLIT_GAP_PX` between them. Returns (train, val, (col0, col_split, col_end, rows))."""
    cols = np.flatnonzero(labelled.any(axis=0))
    c0, c1 = int(cols[0]), int(cols[-1]) + 1
    split = c0 + int(round((c1 - c0) * 0.75))
    train = np.zeros_like(labelled)
    val = np.zeros_like(labelled)
    train[:, c0:max(c0, split - SPLIT_GAP_PX)] = True
    val[:, split:c1] = True
    return train, val, (c0, split, c1, labelled.shape[0])


def split_polygons(scene: Scene, columns: tuple[int, int, int, int]) -> dict[str, dict[str, Any]]:
    """The automatic split as GeoJSON FeatureCollections in the imagery's CRS (what the run writes out)."""
    c0, split, c1, rows = columns
    t = scene.transform

    def rect(a: int, b: int) -> dict[str, Any]:
        x0, y0 = t * (a, 0)
        x1, y1 = t * (b, rows)
        return {"type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": scene.crs.to_string()}},
                "features": [{"type": "Feature", "properties": {"scene": scene.name},
                              "geometry": mapping(box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)))}]}

    return {"train": rect(c0, max(c0, split - SPLIT_GAP_PX)), "val": rect(split, c1)}


def load_scene(image: str, landcover: list[str], polygons: str | None, class_field: str | None, bands: list[int],
               scheme: ClassScheme, radiometry: Radiometry, substitutes: dict[int, int],
               train_area: str | None, val_area: str | None) -> tuple[Scene, dict[str, Any] | None]:
    """One imagery raster with labels and areas; returns the scene and the automatic split's polygons (or None).

    Raises:
        InputRasterError: no overlap of imagery and labels, unknown codes, or an area outside the rasters.
    """
    x, valid, transform, crs, low, high = read_image(image, bands, radiometry)
    shape = valid.shape
    labels = np.full(shape, -1, dtype=np.int64)
    for path in landcover:
        warped = warp_landcover(path, scheme, shape, transform, crs, substitutes)
        labels = np.where(labels < 0, warped, labels)
    if polygons:
        burnt = burn_polygons(polygons, class_field or "class", scheme, shape, transform, crs)
        labels = np.where(burnt >= 0, burnt, labels if not landcover else labels)
        if not landcover:
            labels = burnt
    labels[~valid] = -1
    sources = [*landcover, *([polygons] if polygons else [])]
    if labels.max() < 0:
        raise InputRasterError(f"The labels ({', '.join(sources)}) do not overlap the valid pixels of the imagery "
                               f"{image}: no pixel has both (check the extents and CRS).")
    train = np.ones(shape, bool)
    val = np.zeros(shape, bool)
    split = None
    if train_area:
        train = area_mask(load_areas(train_area), shape, transform, crs)
    if val_area:
        val = area_mask(load_areas(val_area), shape, transform, crs)
        if not (val & (labels >= 0)).any():
            raise InputRasterError(f"The validation area {val_area} holds no labelled pixel of the imagery {image} "
                                   "(it lies outside the rasters, or over nodata).")
        if not train_area:
            train = ~val
    elif train_area:
        val = ~train
    else:
        train, val, columns = split_east(labels >= 0)
        scene = Scene(Path(image).name, x, labels, train, val, transform, crs, low, high, sources)
        split = split_polygons(scene, columns)
    if not (train & (labels >= 0)).any():
        raise InputRasterError(f"The training area {train_area or '(automatic)'} holds no labelled pixel of the "
                               f"imagery {image}.")
    scene = Scene(Path(image).name, x, labels, train, val, transform, crs, low, high, sources)
    log.info("%s: %d x %d px, %.0f %% labelled, training %d px, validation %d px labelled", scene.name, shape[1],
             shape[0], 100 * (labels >= 0).mean(), int((train & (labels >= 0)).sum()),
             int((val & (labels >= 0)).sum()))
    return scene, split


#: Largest weight a rare class gets relative to the pixel-weighted mean (a handful of pixels must not dominate).
MAX_CLASS_WEIGHT = 20.0


def class_weights(scenes: list[Scene], k: int, balance: float) -> np.ndarray | None:
    """Cross-entropy weights ``frequency ** -balance`` over the training area's labelled pixels, scaled so that the
    average pixel keeps weight 1 and capped at :data:`MAX_CLASS_WEIGHT` (absent classes get the cap); ``None`` at 0.

    Plain cross-entropy lets a reader ignore a class of 1 % of the pixels (the bundled reader never predicts
    developed land); 0.5 (square-root balancing) trades a little pixel accuracy for those classes."""
    if not 0.0 <= balance <= 1.0:
        raise TrainingError(f"--class-balance {balance} must be between 0 (none) and 1 (inverse frequency).")
    if balance == 0.0:
        return None
    counts = np.zeros(k, np.float64)
    for sc in scenes:
        counts += np.bincount(sc.labels[sc.train & sc.labelled], minlength=k)[:k]
    freq = counts / max(1.0, counts.sum())
    w = np.where(freq > 0, np.maximum(freq, 1e-12) ** -balance, np.inf)
    w = w / float((freq * np.where(np.isfinite(w), w, 0.0)).sum())
    return np.minimum(w, MAX_CLASS_WEIGHT).astype(np.float32)


class WindowSampler:
    """Random training windows of ``size`` px fully inside the training area, each with some labelled pixels.

    Window corners are found once on a 4 px grid with integral images; :meth:`batch` draws from them with a
    generator seeded by (seed, step), so a resumed run draws exactly the windows the uninterrupted one would have.
    """

    def __init__(self, scenes: list[Scene], size: int, seed: int) -> None:
        self.scenes, self.size, self.seed = scenes, size, seed
        self.corners: list[tuple[int, int, int]] = []
        for s, scene in enumerate(scenes):
            inside = _window_sums(scene.train, size)
            labelled = _window_sums(scene.train & scene.labelled, size)
            rows, cols = np.nonzero((inside == size * size) & (labelled >= max(1, size * size // 100)))
            keep = (rows % 4 == 0) & (cols % 4 == 0)
            self.corners += [(s, int(r), int(c)) for r, c in zip(rows[keep], cols[keep], strict=True)]
        if not self.corners:
            raise TrainingError(f"No {size} px window fits inside the training area with labelled pixels; use a "
                                "larger training area or a smaller --crop.")

    def batch(self, step: int, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        """``(images (B, bands, S, S) float32, labels (B, S, S) int64)`` of step ``step`` (flips and rot90)."""
        rng = np.random.default_rng([self.seed, step])
        images, labels = [], []
        for pick in rng.integers(0, len(self.corners), batch_size):
            s, r, c = self.corners[int(pick)]
            scene, size = self.scenes[s], self.size
            img = scene.image[:, r:r + size, c:c + size]
            lab = np.where(scene.train[r:r + size, c:c + size], scene.labels[r:r + size, c:c + size], -1)
            k, flip = int(rng.integers(0, 4)), bool(rng.integers(0, 2))
            img, lab = np.rot90(img, k, axes=(1, 2)), np.rot90(lab, k)
            if flip:
                img, lab = img[:, :, ::-1], lab[:, ::-1]
            images.append(np.ascontiguousarray(img))
            labels.append(np.ascontiguousarray(lab))
        return np.stack(images), np.stack(labels)


def _window_sums(mask: np.ndarray, size: int) -> np.ndarray:
    """Sum of ``mask`` over every ``size`` x ``size`` window, indexed by the window's top-left corner."""
    integral = np.zeros((mask.shape[0] + 1, mask.shape[1] + 1), dtype=np.int64)
    integral[1:, 1:] = mask.astype(np.int64).cumsum(0).cumsum(1)
    if mask.shape[0] < size or mask.shape[1] < size:
        return np.zeros((0, 0), dtype=np.int64)
    return (integral[size:, size:] - integral[:-size, size:] - integral[size:, :-size] + integral[:-size, :-size])
