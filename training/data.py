"""Unpaired GeoTIFF training data: random windows of land-cover rasters and of image rasters, via rasterio.

Each raster keeps its own grid; nothing is reprojected. A sample ``i`` is fully determined by ``(seed, i)``, so
training is repeatable, workers need no coordination and resuming at step ``s`` just starts at sample ``s * batch``.
Land-cover codes become class indices through the scheme (unknown codes raise, naming code and file); image bands are
normalised to [-1, 1] by :class:`~lcgan_qgis.core.model.contract.Radiometry` with percentiles computed once per dataset.
Which image pixels are valid is decided by the engine's own rule (``lcgan_qgis.core.rasters.validity.image_valid``),
so training and inference never disagree about nodata.

Terrain-aware runs (``model.terrain_channels``) also read a DEM (:class:`training.data_terrain.TerrainRasters`:
resampled once onto every raster's grid by the engine's own reader, channels derived as the engine does). Windows
are flipped and rotated after the derivation, together with the pixels they describe.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import torch
from rasterio.enums import Resampling
from rasterio.windows import Window
from torch.utils.data import Dataset, Sampler

from lcgan_qgis.core.errors import InputRasterError, SchemeError
from lcgan_qgis.core.model.contract import STRETCH_PERCENTILES, Radiometry
from lcgan_qgis.core.model.scheme import ClassScheme
from lcgan_qgis.core.rasters.validity import image_valid

from .areas import Areas, window_geometry
from .data_terrain import TerrainRasters
from .sources import RasterSource

log = logging.getLogger(__name__)

MAX_TRIES = 200  # random windows tried before giving up on a raster
STATS_MAX_SIDE_PX = 2048  # percentiles are computed on a decimated read at most this large


class _Reader:
    """Windowed reads from a list of rasters, with rasterio handles opened lazily in each process."""

    def __init__(self, sources: Sequence[RasterSource], crop_px: int, max_nodata_fraction: float,
                 areas: Areas | None) -> None:
        if not sources:
            raise InputRasterError("No rasters given.")
        self.sources = list(sources)
        self.crop = crop_px
        self.max_nodata = max_nodata_fraction
        for s in self.sources:
            if s.width < crop_px or s.height < crop_px:
                raise InputRasterError(f"{s.path} is {s.width}x{s.height} px, smaller than the {crop_px} px crop.")
        self.areas: list[Any] = (areas.for_rasters(self.sources) if areas is not None
                                 else [None] * len(self.sources))
        sizes = np.array([(s.width - crop_px + 1) * (s.height - crop_px + 1) for s in self.sources], dtype=np.float64)
        self.weights = sizes / sizes.sum()
        self._handles: dict[str, Any] = {}
        self._pid = os.getpid()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_handles"] = {}
        return state

    def handle(self, source: RasterSource) -> Any:
        if self._pid != os.getpid():  # forked worker: never share the parent's GDAL handles
            self._handles, self._pid = {}, os.getpid()
        if source.path not in self._handles:
            self._handles[source.path] = rasterio.open(source.path)
        return self._handles[source.path]

    def close(self) -> None:
        for ds in self._handles.values():
            ds.close()
        self._handles = {}

    def candidates(self, rng: np.random.Generator) -> Iterator[tuple[RasterSource, Window]]:
        """Random windows (weighted by raster area) that lie inside the areas, if any."""
        for _ in range(MAX_TRIES):
            k = int(rng.choice(len(self.sources), p=self.weights))
            s = self.sources[k]
            col = int(rng.integers(0, s.width - self.crop + 1))
            row = int(rng.integers(0, s.height - self.crop + 1))
            area = self.areas[k]
            if area is not None and not area.covers(window_geometry(s.transform, col, row, self.crop, self.crop)):
                continue
            yield s, Window(col, row, self.crop, self.crop)


class LandCoverRasters(_Reader):
    """Land-cover rasters -> ``(indices int64 [H, W], valid bool [H, W])`` windows."""

    def __init__(self, sources: Sequence[RasterSource], scheme: ClassScheme, crop_px: int,
                 max_nodata_fraction: float = 0.05, areas: Areas | None = None,
                 terrain: TerrainRasters | None = None) -> None:
        super().__init__(sources, crop_px, max_nodata_fraction, areas)
        self.scheme = scheme
        self.terrain = terrain

    def read(self, source: RasterSource, window: Window) -> tuple[np.ndarray, np.ndarray]:
        codes = self.handle(source).read(1, window=window)
        try:
            return self.scheme.codes_to_indices(codes, nodata=source.nodata)
        except SchemeError as exc:
            raise SchemeError(f"{source.path} (window {window}): {exc}") from None

    def sample(self, rng: np.random.Generator) -> list[np.ndarray]:
        """``[indices, valid]``, plus the window's terrain channels ``(C, H, W)`` when there is a DEM (pixels
        without elevation count as nodata for ``max_nodata_fraction``)."""
        for source, window in self.candidates(rng):
            indices, valid = self.read(source, window)
            if self.terrain is not None:
                if 1.0 - (valid & self.terrain.valid(source, window)).mean() <= self.max_nodata:
                    return [indices, valid, self.terrain.channels(source, window)]
            elif 1.0 - valid.mean() <= self.max_nodata:
                return [indices, valid]
        raise InputRasterError(_no_window_message("land-cover", self))


class ImageRasters(_Reader):
    """Image rasters -> ``(pixels float32 [B, H, W] in [-1, 1], valid bool [H, W])`` windows."""

    def __init__(self, sources: Sequence[RasterSource], bands: Sequence[int], crop_px: int,
                 max_nodata_fraction: float = 0.05, areas: Areas | None = None,
                 radiometry: Radiometry | None = None, percentiles: Sequence[float] = STRETCH_PERCENTILES,
                 paired: LandCoverRasters | None = None, terrain: TerrainRasters | None = None) -> None:
        super().__init__(sources, crop_px, max_nodata_fraction, areas)
        self.bands = [int(b) for b in bands]
        self.paired = paired
        self.terrain = terrain
        if paired is not None:
            for s, lc in zip(self.sources, paired.sources, strict=True):
                if (s.width, s.height, s.transform, s.crs) != (lc.width, lc.height, lc.transform, lc.crs):
                    raise InputRasterError(
                        f"Paired land cover {lc.path} is not on the grid of the image {s.path} (size, transform and "
                        "CRS must match; resample it onto the image grid with nearest neighbour first)."
                    )
        for s in self.sources:
            bad = [b for b in self.bands if not 1 <= b <= s.count]
            if bad:
                raise InputRasterError(f"{s.path} has {s.count} band(s); band(s) {bad} do not exist.")
        self.radiometry = radiometry or self.compute_radiometry(percentiles)

    def compute_radiometry(self, percentiles: Sequence[float]) -> Radiometry:
        """Per-band percentiles of the valid pixels of all image rasters (decimated reads)."""
        chunks = []
        for s in self.sources:
            scale = max(1.0, max(s.width, s.height) / STATS_MAX_SIDE_PX)
            shape = (len(self.bands), max(1, int(s.height / scale)), max(1, int(s.width / scale)))
            with rasterio.open(s.path) as ds:
                pixels = ds.read(self.bands, out_shape=shape, resampling=Resampling.nearest)
            valid = image_valid(pixels, s.band_nodata(self.bands))
            chunks.append(pixels[:, valid].astype(np.float64))
        values = np.concatenate(chunks, axis=1)
        if values.shape[1] == 0:
            raise InputRasterError(
                f"The image rasters {[s.path for s in self.sources]} hold no valid pixel (every pixel is nodata in "
                f"bands {list(self.bands)}). Check their nodata value and data.image_bands, or add imagery."
            )
        p_lo, p_hi = (float(p) for p in percentiles)
        low = np.percentile(values, p_lo, axis=1)
        high = np.percentile(values, p_hi, axis=1)
        high = np.maximum(high, low + 1e-6)
        return Radiometry("fixed", tuple(float(v) for v in low), tuple(float(v) for v in high), (p_lo, p_hi))

    def read(self, source: RasterSource, window: Window) -> tuple[np.ndarray, np.ndarray]:
        pixels = self.handle(source).read(self.bands, window=window)
        valid = image_valid(pixels, source.band_nodata(self.bands))
        normalized = self.radiometry.normalize(pixels)
        normalized[:, ~valid] = -1.0  # nodata (and NaN) pixels enter the networks as black; losses mask them
        return normalized, valid

    def sample(self, rng: np.random.Generator) -> list[np.ndarray]:
        """``[pixels, valid]``, plus ``[paired_index, paired_valid]`` from the paired land cover when there is one,
        plus the window's terrain channels when there is a DEM (last)."""
        for source, window in self.candidates(rng):
            pixels, valid = self.read(source, window)
            usable = valid if self.terrain is None else valid & self.terrain.valid(source, window)
            if 1.0 - usable.mean() <= self.max_nodata:
                out = [pixels, valid]
                if self.paired is not None:
                    out += self.paired.read(self.paired.sources[self.sources.index(source)], window)
                if self.terrain is not None:
                    out.append(self.terrain.channels(source, window))
                return out
        raise InputRasterError(_no_window_message("image", self))


def _no_window_message(kind: str, reader: _Reader) -> str:
    paths = ", ".join(s.path for s in reader.sources)
    where = " inside the training areas" if any(a is not None for a in reader.areas) else ""
    return (
        f"No {reader.crop}x{reader.crop} {kind} window{where} with at most {reader.max_nodata:.0%} nodata found in "
        f"{MAX_TRIES} random tries ({paths}). Use smaller crops, larger areas or a higher max_nodata_fraction."
    )


def augment(arrays: Sequence[np.ndarray], rng: np.random.Generator, rot90: bool) -> list[np.ndarray]:
    """Apply the same random horizontal/vertical flip (and optional 90-degree rotation) to every array.

    Arrays are ``[..., H, W]`` (pixels, indices and masks alike), so masks stay aligned with their pixels.
    """
    flip_h, flip_v = bool(rng.integers(2)), bool(rng.integers(2))
    turns = int(rng.integers(4)) if rot90 else 0
    out = []
    for a in arrays:
        if flip_h:
            a = a[..., :, ::-1]
        if flip_v:
            a = a[..., ::-1, :]
        if turns:
            a = np.rot90(a, turns, axes=(-2, -1))
        out.append(np.ascontiguousarray(a))
    return out


class UnpairedWindows(Dataset):
    """Sample ``i``: an independent land-cover window and image window, each drawn from ``(seed, i)``.

    Items are dicts of tensors: ``lc_index`` int64 [H, W], ``lc_valid`` bool [H, W], ``rgb`` float32 [B, H, W],
    ``rgb_valid`` bool [H, W]; with a paired land cover also ``paired_index`` and ``paired_valid`` (the image
    window's own land cover, for the optional semi-supervised terms); with a DEM also ``lc_terrain`` and
    ``rgb_terrain`` float32 [C, H, W] (the terrain channels of each window). The length is the number of samples
    the whole schedule uses.
    """

    def __init__(self, landcover: LandCoverRasters, images: ImageRasters, length: int, seed: int = 0,
                 rot90: bool = False) -> None:
        self.landcover, self.images = landcover, images
        self.length, self.seed, self.rot90 = length, seed, rot90

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng_lc = np.random.default_rng([self.seed, 0, index])
        rng_img = np.random.default_rng([self.seed, 1, index])
        (lc_index, lc_valid, *_), lc_terrain = split_terrain(
            augment(self.landcover.sample(rng_lc), rng_lc, self.rot90), self.landcover)
        (rgb, rgb_valid, *paired), rgb_terrain = split_terrain(
            augment(self.images.sample(rng_img), rng_img, self.rot90), self.images)
        item = {
            "lc_index": torch.from_numpy(lc_index.astype(np.int64)),
            "lc_valid": torch.from_numpy(lc_valid),
            "rgb": torch.from_numpy(rgb.astype(np.float32)),
            "rgb_valid": torch.from_numpy(rgb_valid),
        }
        if paired:
            item["paired_index"] = torch.from_numpy(paired[0].astype(np.int64))
            item["paired_valid"] = torch.from_numpy(paired[1])
        if lc_terrain is not None and rgb_terrain is not None:
            item["lc_terrain"] = torch.from_numpy(lc_terrain)
            item["rgb_terrain"] = torch.from_numpy(rgb_terrain)
        return item


def split_terrain(sample: list[np.ndarray], reader: LandCoverRasters | ImageRasters
                  ) -> tuple[list[np.ndarray], np.ndarray | None]:
    """A reader's sample without its terrain channels, and those channels (None without a DEM)."""
    if reader.terrain is None:
        return sample, None
    return sample[:-1], sample[-1]


class StepSampler(Sampler[int]):
    """Sample indices for steps ``start_step..total_steps-1`` of one process out of ``world`` (DDP rank ``rank``).

    Step ``s`` of rank ``r`` uses samples ``(s * world + r) * batch + k`` for ``k < batch``, so every process sees
    different windows and a resumed run sees exactly the windows an uninterrupted one would.
    """

    def __init__(self, start_step: int, total_steps: int, batch_size: int, rank: int = 0, world: int = 1) -> None:
        self.start, self.total, self.batch, self.rank, self.world = start_step, total_steps, batch_size, rank, world

    def __len__(self) -> int:
        return max(0, self.total - self.start) * self.batch

    def __iter__(self) -> Iterator[int]:
        for step in range(self.start, self.total):
            base = (step * self.world + self.rank) * self.batch
            yield from range(base, base + self.batch)


def resolve(paths: Sequence[str], data_dir: str | Path | None) -> list[Path]:
    """Config paths relative to ``data_dir`` (absolute ones kept)."""
    base = Path(data_dir) if data_dir else Path.cwd()
    return [p if p.is_absolute() else base / p for p in (Path(s) for s in paths)]


def resolve_area_file(path: str, data_dir: str | Path | None) -> Path:
    """An area file (GeoJSON/GPKG): absolute, else under ``data_dir``, else relative to the working directory."""
    in_data = resolve([path], data_dir)[0]
    return in_data if in_data.exists() or not Path(path).exists() else Path(path)


def build_datasets(config: Any, data_dir: str | Path | None, scheme: ClassScheme,
                   radiometry: Radiometry | None = None) -> tuple[LandCoverRasters, ImageRasters]:
    """The land-cover and image readers a :class:`~training.config.TrainConfig` describes."""
    from .areas import load_areas

    d = config.data
    areas = load_areas(resolve_area_file(d.train_areas, data_dir)) if d.train_areas else None
    lc_sources = [RasterSource.open(p) for p in resolve(d.lc_rasters, data_dir)]
    img_sources = [RasterSource.open(p) for p in resolve(d.image_rasters, data_dir)]
    for s in lc_sources:
        if s.count != 1:
            raise InputRasterError(f"Land-cover raster {s.path} has {s.count} bands; it needs exactly 1 (codes).")
    lc_terrain = img_terrain = None
    inputs = config.terrain_inputs()
    if inputs is not None:
        dem = resolve([d.dem_raster], data_dir)[0]
        lc_terrain = TerrainRasters(dem, lc_sources, inputs)
        img_terrain = TerrainRasters(dem, img_sources, inputs)
    landcover = LandCoverRasters(lc_sources, scheme, d.crop_size_px, d.max_nodata_fraction, areas, lc_terrain)
    paired = None
    if d.paired_landcover:
        paired_sources = [RasterSource.open(p) for p in resolve(d.paired_landcover, data_dir)]
        if len(paired_sources) != len(img_sources):
            raise InputRasterError(f"data.paired_landcover lists {len(paired_sources)} raster(s) but "
                                   f"data.image_rasters lists {len(img_sources)}: give one per image raster.")
        paired = LandCoverRasters(paired_sources, scheme, d.crop_size_px, 1.0)
    images = ImageRasters(img_sources, d.image_bands, d.crop_size_px, d.max_nodata_fraction, areas,
                          radiometry=radiometry, percentiles=d.percentiles, paired=paired, terrain=img_terrain)
    return landcover, images
