"""A fine-tuning run's class scheme and how the base model's classes carry over to it.

The scheme is the ``--scheme`` JSON, else the land-cover raster's colour table and category names, else the base
model's. A class of a new scheme may list the base codes it groups (``"includes": [41, 42, 43]``); otherwise a class
with the same code as a base class is that class, and the base classes still unmatched are matched by where the
base model's predictions fall on the training labels (the new class they overlap most). The matching serves twice:
to carry the class-dependent layers over (the RGB -> land cover model's last convolution row by row, the land cover
-> RGB model's first convolution column by column; every other layer is kept as it is) and to score the base model
in the new scheme.
"""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path

import numpy as np
import torch
from torch import nn

from lcgan_qgis.core.model.scheme import ClassScheme, LandCoverClass

from ..errors import TrainingError
from .base import Architecture, Carry, retarget

log = logging.getLogger(__name__)


def read_includes(path: str | Path | None, scheme: ClassScheme) -> dict[int, list[int]]:
    """``{new class index: [base codes]}`` from the classes' optional ``includes`` lists of a scheme JSON."""
    if not path:
        return {}
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    out = {}
    for i, item in enumerate(data.get("classes", [])):
        listed = item.get("includes") if isinstance(item, dict) else None
        if listed is not None:
            if not isinstance(listed, list) or not all(isinstance(c, int) for c in listed):
                raise TrainingError(f"{path}: classes[{i}].includes must be a list of integer codes, got {listed!r}.")
            out[i] = list(listed)
    return out


def scheme_from_raster(path: str) -> ClassScheme | None:
    """A scheme from a land-cover raster's colour table and category names (None when it has neither)."""
    from osgeo import gdal

    ds = gdal.Open(str(path))
    if ds is None:
        return None
    band = ds.GetRasterBand(1)
    table, names = band.GetColorTable(), band.GetCategoryNames() or []
    if table is None:
        return None
    stats = band.ReadAsArray()
    nodata = band.GetNoDataValue()
    codes = sorted(int(c) for c in np.unique(stats) if nodata is None or c != nodata)
    classes = []
    for code in codes:
        r, g, b, a = table.GetColorEntry(code) if code < table.GetCount() else (128, 128, 128, 255)
        name = names[code] if code < len(names) and names[code] else f"class {code}"
        classes.append(LandCoverClass(code, name, (int(r), int(g), int(b), 255)))
    nodata_code = int(nodata) if nodata is not None and 0 <= nodata <= 65535 and int(nodata) not in codes else (
        255 if 255 not in codes else 65535)
    return ClassScheme(f"{Path(path).stem} (colour table)", tuple(classes), nodata_code) if classes else None


def class_mapping(base: ClassScheme, new: ClassScheme, includes: dict[int, list[int]],
                  cooccurrence: np.ndarray | None) -> list[int]:
    """For each base class index, the new class index it becomes (-1: none). See the module docstring.

    ``cooccurrence``: ``(base classes, new classes)`` pixel counts of base predictions against training labels.
    """
    mapping = [-1] * len(base)
    base_index = {c: i for i, c in enumerate(base.codes)}
    for new_i, codes in includes.items():
        for code in codes:
            if code in base_index:
                mapping[base_index[code]] = new_i
    if not includes:
        for new_i, code in enumerate(new.codes):
            if code in base_index and base.names[base_index[code]].lower() == new.names[new_i].lower():
                mapping[base_index[code]] = new_i
        if cooccurrence is not None:
            for b in range(len(base)):
                if mapping[b] < 0 and cooccurrence[b].sum() > 0:
                    mapping[b] = int(np.argmax(cooccurrence[b]))
    return mapping


def _dominant(mapping: list[int], new_i: int, weights: np.ndarray) -> list[tuple[int, float]]:
    members = [b for b, n in enumerate(mapping) if n == new_i]
    if not members:
        return []
    w = np.array([max(float(weights[b]), 1e-6) for b in members])
    return list(zip(members, (w / w.sum()).tolist(), strict=True))


def transfer(nets: dict[str, nn.Module], archs: dict[str, Architecture], base: ClassScheme, new: ClassScheme,
             mapping: list[int], weights: np.ndarray, seed: int = 0) -> tuple[dict[str, nn.Module], list[str]]:
    """Generators for ``new`` from the base ones: class-independent layers kept, class rows/columns carried over.

    ``g_rgb2lc``'s last convolution: the row of the member base class with the most weight (``weights``: base
    prediction counts on the training area); ``g_lc2rgb``'s first convolution: the weighted mean of the members'
    columns (classes without a member: the mean of all, the input a nodata pixel gets). Returns the new nets and
    one line per new class saying where it came from.
    """
    if list(base.codes) == list(new.codes) and mapping == list(range(len(base))):  # copies: the base stays the base
        return {k: copy.deepcopy(v) for k, v in nets.items()}, [f"{c.code} {c.name}: kept" for c in new.classes]
    torch.manual_seed(seed)
    k_old, k_new = len(base), len(new)
    members = [_dominant(mapping, c, weights) for c in range(k_new)]
    notes = [f"{new.codes[c]} {new.names[c]}: from base {', '.join(str(base.codes[b]) for b, _ in m)}" if m else
             f"{new.codes[c]} {new.names[c]}: new (no base class maps to it)" for c, m in enumerate(members)]
    out = {name: retarget(net, archs[name], "logits" if name == "g_rgb2lc" else "tanh", k_old, k_new,
                          _mapped_carry(members, k_old, k_new))[0] for name, net in nets.items()}
    for line in notes:
        log.info("class %s", line)
    return out, notes


def _mapped_carry(members: list[list[tuple[int, float]]], k_old: int, k_new: int) -> Carry:
    """The rule of :func:`transfer` for any design's class layers (``base.class_layers``): a class row (axis 0)
    from its dominant member, a class column (axis 1) the weighted mean of its members' columns, channels after the
    classes (terrain, noise) and input biases kept."""
    def carry(w_old: torch.Tensor, b_old: torch.Tensor | None, w_new: torch.Tensor, b_new: torch.Tensor | None,
              axis: int) -> None:
        if axis == 0:
            if b_new is not None and b_old is not None:
                b_new.copy_(b_old.mean() - 2.0)  # (a class no base class maps to starts unlikely)
            for c, m in enumerate(members):
                if m:
                    top = max(m, key=lambda item: item[1])[0]
                    w_new[c] = w_old[top]
                    if b_new is not None and b_old is not None:
                        b_new[c] = b_old[top]
            return
        if b_new is not None and b_old is not None:
            b_new.copy_(b_old)
        mean = w_old[:, :k_old].mean(dim=1)
        for c, m in enumerate(members):
            w_new[:, c] = sum(w_old[:, b] * share for b, share in m) if m else mean
        w_new[:, k_new:] = w_old[:, k_old:]

    return carry
