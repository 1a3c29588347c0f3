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
from .base import Architecture

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
    out: dict[str, nn.Module] = {}
    notes = []
    for name, net in nets.items():
        arch = archs[name]
        if name == "g_rgb2lc":
            arch = Architecture(arch.in_channels, k_new, arch.ngf, arch.n_blocks, arch.upsample, arch.norm, "none")
            fresh = arch.build("logits")
        else:
            arch = Architecture(arch.in_channels - k_old + k_new, arch.out_channels, arch.ngf, arch.n_blocks,
                                arch.upsample, arch.norm, arch.output_filter)
            fresh = arch.build("tanh")
        old_state, new_state = net.state_dict(), fresh.state_dict()
        convs = [n for n, m in fresh.named_modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
        target = convs[-1] if name == "g_rgb2lc" else convs[0]
        for key, value in old_state.items():
            if not key.startswith(target + "."):
                new_state[key] = value.clone()
        w_old, b_old = old_state[target + ".weight"], old_state[target + ".bias"]
        w_new, b_new = new_state[target + ".weight"], new_state[target + ".bias"]
        with torch.no_grad():
            if name == "g_rgb2lc":
                b_new.copy_(b_old.mean() - 2.0)
                for c in range(k_new):
                    members = _dominant(mapping, c, weights)
                    if members:
                        top = max(members, key=lambda m: m[1])[0]
                        w_new[c] = w_old[top]
                        b_new[c] = b_old[top]
                        notes.append(f"{new.codes[c]} {new.names[c]}: from base "
                                     f"{', '.join(str(base.codes[b]) for b, _ in members)}")
                    else:
                        notes.append(f"{new.codes[c]} {new.names[c]}: new (no base class maps to it)")
            else:
                b_new.copy_(b_old)
                mean = w_old[:, :k_old].mean(dim=1)
                for c in range(k_new):
                    members = _dominant(mapping, c, weights)
                    w_new[:, c] = sum(w_old[:, b] * share for b, share in members) if members else mean
                w_new[:, k_new:] = w_old[:, k_old:]
        fresh.load_state_dict(new_state)
        out[name] = fresh
    for line in notes:
        log.info("class %s", line)
    return out, notes
