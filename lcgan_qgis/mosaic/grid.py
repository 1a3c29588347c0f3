"""Super-tiles: how a mosaic job cuts the raster into parts, on the one window grid of the whole raster.

The engine lays ONE grid of inference windows over the whole raster
(:meth:`~lcgan_qgis.core.run.engine.RunPlan.tiling`). A super-tile is a rectangle of output pixels; its task runs
exactly the windows of that grid touching the rectangle, with their whole-grid blending weights
(:func:`~lcgan_qgis.core.run.engine.translate_region`), so its pixels equal the single-process run's. Its halo (the
input read beyond the rectangle) is therefore the rest of those windows: at least the blend overlap, at most one window.

Super-tile edges sit on window starts (the start nearest each multiple of ``tile_px``): a window start is where the
previous window's overlap begins, so each edge makes exactly one window run twice (once for each neighbour), the
least any cut can cost. Per axis the work is ``(n + k - 1) / n`` windows for ``n`` windows cut into ``k`` tiles:
with 512 px windows, 8192 px super-tiles cost ~6 % more per axis than one run, 4096 px ~12 %.

Pure functions of the grid; no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..core.rasters.raster import Window
from ..core.run.tiling import AxisTiling, Tiling

DEFAULT_TILE_PX = 4096
TILES_FOLDER = "tiles"


@dataclass(frozen=True)
class SuperTile:
    """One part of a mosaic: its place in the super-tile grid and its output pixels (whole-raster coordinates)."""

    row: int
    col: int
    window: Window

    @property
    def name(self) -> str:
        """``r0003_c0012``: the tile's name in the manifest, the task key and the file name."""
        return f"r{self.row:04d}_c{self.col:04d}"

    @property
    def relative_path(self) -> str:
        """The tile's COG, relative to the output folder."""
        return f"{TILES_FOLDER}/{self.name}.tif"


def tile_edges(axis: AxisTiling, tile_px: int) -> tuple[int, ...]:
    """Super-tile edges along one axis: 0, the window start nearest each multiple of ``tile_px``, the axis end."""
    if tile_px < 1:
        raise ValueError(f"tile_px must be >= 1, got {tile_px}")
    edges = [0]
    for k in range(1, math.ceil(axis.length / tile_px)):
        nearest = min(axis.starts, key=lambda s, target=k * tile_px: (abs(s - target), s))
        if nearest > edges[-1]:
            edges.append(nearest)
    edges.append(axis.length)
    return tuple(edges)


def super_tiles(tiling: Tiling, tile_px: int) -> list[SuperTile]:
    """The super-tiles of the raster ``tiling`` covers, in row-major order."""
    rows, cols = tile_edges(tiling.rows, tile_px), tile_edges(tiling.cols, tile_px)
    return [SuperTile(r, c, Window(cols[c], rows[r], cols[c + 1] - cols[c], rows[r + 1] - rows[r]))
            for r in range(len(rows) - 1) for c in range(len(cols) - 1)]


def windows_per_tile(tiling: Tiling, tile: SuperTile) -> int:
    """Inference windows a super-tile's task runs (the grid's windows touching it)."""
    part = tiling.covering(tile.window)
    return part.count
