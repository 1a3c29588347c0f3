"""Full-resolution crops of every land-cover class: the map, the real imagery and each generator's, side by side.

Per class group (:data:`CLASS_GROUPS`), the ``crop_px`` square wholly inside the first area (of those given, in order
of preference: the held-out area, then the training area for a class the held-out area lacks) where the group covers
at least ``MIN_SHARE``, at the place where it covers the largest share, is cut from every panel and written as two
small PNGs: ``<group>_1x.png`` (one raster pixel = one picture pixel) and ``<group>_3x.png`` (the ``zoom_crop_px``
square inside it where the group covers the most, enlarged 3x, nearest neighbour: each raster pixel a 3x3 block,
nothing smoothed). Panels left to right in the order given, separated by white gaps of ``GAP_PX``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

CLASS_GROUPS = {"shrub": (52,), "forest": (41, 42, 43), "barren": (31,), "water": (11,),
                "developed": (21, 22, 23, 24), "pasture": (81,)}  # NLCD codes
GAP_PX = 4
MIN_SHARE = 0.05  # a group covering less of its best crop than this is reported absent


def _window_sums(mask: np.ndarray, side: int) -> np.ndarray:
    """Count of True pixels in every ``side`` square, indexed by its top-left corner."""
    c = np.pad(np.cumsum(np.cumsum(mask.astype(np.int64), axis=0), axis=1), ((1, 0), (1, 0)))
    return c[side:, side:] - c[:-side, side:] - c[side:, :-side] + c[:-side, :-side]


def best_crop(in_group: np.ndarray, area: np.ndarray, side: int) -> tuple[int, int, float] | None:
    """``(row, col, share)`` of the ``side`` square wholly inside ``area`` where ``in_group`` covers the most."""
    if area.shape[0] < side or area.shape[1] < side:
        return None
    inside = _window_sums(area, side) == side * side
    if not inside.any():
        return None
    counts = np.where(inside, _window_sums(in_group & area, side), -1)
    r, c = np.unravel_index(int(np.argmax(counts)), counts.shape)
    return int(r), int(c), float(counts[r, c]) / (side * side)


def _place(in_group: np.ndarray, areas: Sequence[tuple[str, np.ndarray]],
           side: int) -> tuple[str, int, int, float] | None:
    """The first area (in order) where the group covers at least ``MIN_SHARE`` of a crop, and its best crop."""
    for name, area in areas:
        found = best_crop(in_group, area, side)
        if found is not None and found[2] >= MIN_SHARE:
            return (name, *found)
    return None


def strip(panels: list[np.ndarray], rows: slice, cols: slice, zoom: int = 1) -> np.ndarray:
    """The ``(rows, cols)`` window of each ``(H, W, 3)`` uint8 panel, enlarged ``zoom`` x, side by side."""
    parts = []
    for panel in panels:
        crop = panel[rows, cols]
        crop = np.repeat(np.repeat(crop, zoom, axis=0), zoom, axis=1)
        parts += [crop, np.full((crop.shape[0], GAP_PX, 3), 255, np.uint8)]
    return np.ascontiguousarray(np.concatenate(parts[:-1], axis=1))


def write_class_crops(codes: np.ndarray, areas: Sequence[tuple[str, np.ndarray]], panels: list[np.ndarray],
                      out_dir: str | Path, crop_px: int = 96, zoom_crop_px: int = 40, zoom: int = 3) -> list[dict]:
    """Write the crops of each class group (see the module docstring); returns what was written, and where from.

    Args:
        codes: ``(rows, cols)`` NLCD codes of the map.
        areas: ``(name, (rows, cols) bool)`` where crops may lie (valid pixels), in order of preference.
        panels: ``(rows, cols, 3)`` uint8 pictures of the same grid (map colours, real, generated...).
    """
    import matplotlib.image

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, group in CLASS_GROUPS.items():
        entry: dict = {"class": name, "codes": list(group)}
        in_group = np.isin(codes, group)
        place = _place(in_group, areas, crop_px)
        if place is None:
            written.append({**entry, "present": False})
            continue
        area_name, r, c, share = place
        full = out_dir / f"{name}_1x.png"
        matplotlib.image.imsave(full, strip(panels, slice(r, r + crop_px), slice(c, c + crop_px)))
        window = (slice(r, r + crop_px), slice(c, c + crop_px))
        zr, zc, _share = best_crop(in_group[window], np.ones((crop_px, crop_px), bool), zoom_crop_px)
        z0r, z0c = r + zr, c + zc
        zoomed = out_dir / f"{name}_3x.png"
        matplotlib.image.imsave(zoomed, strip(panels, slice(z0r, z0r + zoom_crop_px),
                                              slice(z0c, z0c + zoom_crop_px), zoom))
        written.append({**entry, "present": True, "area": area_name, "share": round(share, 3), "row": r, "col": c,
                        "crop_px": crop_px,
                        "files": [full.name, zoomed.name]})
    return written
