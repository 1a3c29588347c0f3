"""Class schemes: the ordered land-cover classes a model knows (source code, name, RGBA colour).

Class *index* i (0-based, the model's channel i) stands for ``scheme.classes[i].code`` in the source rasters.
Schemes are stored as JSON (``resources/schemes/*.json``) and inside each model's metadata.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import SchemeError

RGBA = tuple[int, int, int, int]

#: Every code of the NLCD legend (CONUS and Alaska), grouped by the tens digit: 1x water, 2x developed, 3x barren,
#: 4x forest, 5x shrubland, 7x herbaceous, 8x planted/cultivated, 9x wetlands.
NLCD_LEGEND = (11, 12, 21, 22, 23, 24, 31, 41, 42, 43, 51, 52, 71, 72, 73, 74, 81, 82, 90, 95)

#: Longest class or scheme name (characters): a legend entry, not a document.
MAX_NAME_CHARS = 200


def unseen_code_substitutes(scheme: ClassScheme, codes: Iterable[int]) -> dict[int, int]:
    """The rule for an NLCD code a model never saw: read it as the nearest code (lower on a tie) of the same NLCD
    group that the scheme has (24 -> 23, 12 -> 11, 51 -> 52). Applies only to NLCD schemes (every code an NLCD
    legend code) and NLCD codes; returns ``{unseen code: substitute}`` for those of ``codes`` it covers."""
    known = set(scheme.codes)
    if not known <= set(NLCD_LEGEND):
        return {}
    out = {}
    for code in codes:
        code = int(code)
        if code in known or code not in NLCD_LEGEND:
            continue
        group = sorted((abs(k - code), k) for k in known if k // 10 == code // 10)
        if group:
            out[code] = group[0][1]
    return out


@dataclass(frozen=True)
class LandCoverClass:
    """One class: its code in the source rasters, a display name and an RGBA colour (0-255 each)."""

    code: int
    name: str
    rgba: RGBA

    @property
    def hex(self) -> str:
        """Colour as ``#rrggbb``."""
        return "#{:02x}{:02x}{:02x}".format(*self.rgba[:3])


@dataclass(frozen=True)
class ClassScheme:
    """An ordered set of land-cover classes plus the code that marks nodata in land-cover rasters."""

    name: str
    classes: tuple[LandCoverClass, ...]
    nodata_code: int = 255

    def __post_init__(self) -> None:
        if not self.classes:
            raise SchemeError(f"Class scheme '{self.name}' has no classes.")
        codes = [c.code for c in self.classes]
        dupes = sorted({c for c in codes if codes.count(c) > 1})
        if dupes:
            raise SchemeError(f"Class scheme '{self.name}' repeats the code(s) {dupes}.")
        if isinstance(self.nodata_code, bool) or not isinstance(self.nodata_code, int) or not (
                0 <= self.nodata_code <= 65535):
            raise SchemeError(f"Class scheme '{self.name}': nodata code {self.nodata_code!r} is outside 0..65535 (the "
                              "output holds codes as Byte or UInt16).")
        if self.nodata_code in codes:
            raise SchemeError(
                f"Class scheme '{self.name}': nodata code {self.nodata_code} is also the code of a class."
            )
        for c in self.classes:
            if not 0 <= c.code <= 65535:
                raise SchemeError(f"Class scheme '{self.name}': code {c.code} is outside 0..65535.")
            if len(c.rgba) != 4 or not all(isinstance(v, int) and 0 <= v <= 255 for v in c.rgba):
                raise SchemeError(
                    f"Class scheme '{self.name}': colour of code {c.code} must be 4 integers 0-255, got {c.rgba}."
                )

    # -- views -----------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.classes)

    @property
    def codes(self) -> tuple[int, ...]:
        return tuple(c.code for c in self.classes)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.classes)

    @property
    def colors(self) -> np.ndarray:
        """``(n_classes, 4)`` uint8 RGBA table, row i for class index i."""
        return np.array([c.rgba for c in self.classes], dtype=np.uint8)

    @property
    def code_dtype(self) -> np.dtype:
        """Smallest unsigned type holding every code and the nodata code."""
        return np.dtype(np.uint8) if max(*self.codes, self.nodata_code) <= 255 else np.dtype(np.uint16)

    # -- conversions -----------------------------------------------------------------------------------------
    def codes_to_indices(self, codes: np.ndarray, nodata: int | float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Map source codes to class indices.

        Args:
            codes: integer array of source codes, any shape.
            nodata: the raster's own nodata value (besides ``self.nodata_code``), or None.

        Returns:
            ``(indices, valid)``: int64 indices (0 where invalid) and a bool mask of valid pixels.

        Raises:
            SchemeError: if a code is neither a class code nor nodata; the message lists codes and counts.
        """
        codes = np.asarray(codes)
        nodata_mask = codes == self.nodata_code
        if nodata is not None:
            nodata_mask |= codes == nodata
        table = np.array(sorted(self.codes), dtype=np.int64)
        order = np.argsort(np.array(self.codes, dtype=np.int64))
        flat = codes.astype(np.int64, copy=False)
        pos = np.clip(np.searchsorted(table, flat), 0, len(table) - 1)
        known = table[pos] == flat
        bad = ~known & ~nodata_mask
        if bad.any():
            unseen = unseen_code_substitutes(self, np.unique(flat[bad]).tolist())
            if not unseen:
                raise SchemeError(self.describe_unknown(flat[bad]))
            flat = flat.copy()
            for code, target in unseen.items():
                flat[flat == code] = target
            return self.codes_to_indices(flat, nodata)
        indices = np.where(known, order[pos], 0)
        return indices, known & ~nodata_mask

    def table_indices(self, codes: np.ndarray, nodata: float | None = None) -> np.ndarray | None:
        """:meth:`codes_to_indices` through a per-run lookup table for 8- and 16-bit unsigned codes: int16 class
        indices, :data:`NODATA_INDEX` where invalid. ``None`` where the table cannot answer (another type, or a code
        the scheme does not know: :meth:`codes_to_indices` then gives its message)."""
        table = code_table(self, nodata, np.asarray(codes).dtype)
        if table is None:
            return None
        indices = table[codes]
        return None if (indices == UNKNOWN_CODE).any() else indices

    def describe_unknown(self, unknown_codes: np.ndarray | Mapping[int, int], where: str = "") -> str:
        """A message listing unknown codes with their pixel counts (at most 10, most frequent first).

        Args:
            unknown_codes: the unknown code of every bad pixel, or (bounded memory) ``{code: pixel count}``.
            where: appended to the counts, e.g. ``" in rows 1-2048 of 200000 (the scan stopped there)"``.
        """
        if isinstance(unknown_codes, Mapping):
            pairs = [(int(n), int(v)) for v, n in unknown_codes.items()]
        else:
            values, counts = np.unique(unknown_codes, return_counts=True)
            pairs = list(zip(counts.tolist(), values.tolist()))
        top = sorted(pairs, reverse=True)[:10]
        listing = ", ".join(f"{v} ({n:,} px)" if n >= 10_000 else f"{v} ({n} px)" for n, v in top)
        more = "" if len(pairs) <= 10 else f" and {len(pairs) - 10} more"
        return (
            f"{len(pairs)} value(s) are not codes of the class scheme '{self.name}': {listing}{more}{where}. "
            f"Known codes: {list(self.codes)}; nodata code: {self.nodata_code}."
        )

    def indices_to_codes(self, indices: np.ndarray) -> np.ndarray:
        """Map class indices (0..n-1) back to source codes in :attr:`code_dtype`."""
        lut = np.array(self.codes, dtype=self.code_dtype)
        return lut[np.asarray(indices)]

    # -- serialisation ---------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "nodata_code": self.nodata_code,
            "classes": [{"code": c.code, "name": c.name, "color": c.hex, "alpha": c.rgba[3]} for c in self.classes],
        }

    @classmethod
    def from_dict(cls, data: Any, source: str = "scheme") -> ClassScheme:
        """Build a scheme from parsed JSON, with errors that name ``source``."""
        if not isinstance(data, dict):
            raise SchemeError(f"{source}: a class scheme must be a JSON object, got {type(data).__name__}.")
        raw = data.get("classes")
        if not isinstance(raw, list) or not raw:
            raise SchemeError(f"{source}: 'classes' must be a non-empty list.")
        classes = []
        for i, item in enumerate(raw):
            if not isinstance(item, dict):
                raise SchemeError(f"{source}: classes[{i}] must be an object with code, name and color.")
            code, name, color = item.get("code"), item.get("name"), item.get("color")
            if not isinstance(code, int) or isinstance(code, bool):
                raise SchemeError(f"{source}: classes[{i}].code must be an integer, got {code!r}.")
            if not isinstance(name, str) or not name:
                raise SchemeError(f"{source}: classes[{i}] (code {code}) needs a non-empty name.")
            if len(name) > MAX_NAME_CHARS:  # (names are copied into every output's colour table and side-car)
                raise SchemeError(f"{source}: classes[{i}] (code {code}) has a name of {len(name):,} characters; "
                                  f"at most {MAX_NAME_CHARS} are allowed.")
            rgba = _parse_color(color, item.get("alpha", 255), f"{source}: code {code}")
            classes.append(LandCoverClass(code, name, rgba))
        nodata = data.get("nodata_code", 255)
        if not isinstance(nodata, int) or isinstance(nodata, bool):
            raise SchemeError(f"{source}: nodata_code must be an integer, got {nodata!r}.")
        name = data.get("name", source)
        if not isinstance(name, str) or not name or len(name) > MAX_NAME_CHARS:
            shown = repr(name) if len(repr(name)) <= 40 else repr(name)[:37] + "..."
            raise SchemeError(f"{source}: the scheme's name must be a non-empty string of at most {MAX_NAME_CHARS} "
                              f"characters, got {shown}.")
        return cls(name=name, classes=tuple(classes), nodata_code=nodata)

    @classmethod
    def load(cls, path: str | Path) -> ClassScheme:
        """Read a scheme JSON file."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SchemeError(f"Class scheme file not found: {path}") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise SchemeError(f"Cannot read class scheme {path}: {exc}") from None
        return cls.from_dict(data, source=str(path))


def _parse_color(color: Any, alpha: Any, where: str) -> RGBA:
    if isinstance(color, str) and len(color) == 7 and color.startswith("#"):
        try:
            r, g, b = (int(color[i : i + 2], 16) for i in (1, 3, 5))
        except ValueError:
            raise SchemeError(f"{where}: colour {color!r} is not #rrggbb.") from None
    elif isinstance(color, (list, tuple)) and len(color) in (3, 4) and all(isinstance(v, int) for v in color):
        r, g, b = color[:3]
        alpha = color[3] if len(color) == 4 else alpha
    else:
        raise SchemeError(f"{where}: colour must be '#rrggbb' or [r, g, b(, a)], got {color!r}.")
    rgba = (r, g, b, alpha)
    if not all(isinstance(v, int) and 0 <= v <= 255 for v in rgba):
        raise SchemeError(f"{where}: colour components must be 0-255, got {rgba}.")
    return rgba  # type: ignore[return-value]


UNKNOWN_CODE, NODATA_INDEX = -2, -1  # entries of a code table besides the class indices


@functools.lru_cache(maxsize=8)
def code_table(scheme: ClassScheme, nodata: float | None, dtype: np.dtype) -> np.ndarray | None:
    """Code -> class index for every value of an 8- or 16-bit unsigned ``dtype`` (``None`` for other types), by the
    rules of :meth:`ClassScheme.codes_to_indices`: the scheme's nodata code and ``nodata`` -> :data:`NODATA_INDEX`,
    an unseen NLCD code -> its substitute's index, anything else -> :data:`UNKNOWN_CODE`."""
    if dtype.kind != "u" or dtype.itemsize > 2:
        return None
    table = np.full(1 << (8 * dtype.itemsize), UNKNOWN_CODE, dtype=np.int16)
    for index, code in enumerate(scheme.codes):
        if 0 <= code < table.size:
            table[code] = index
    for value in (scheme.nodata_code, nodata):
        if value is not None and math.isfinite(value) and float(value).is_integer() and 0 <= value < table.size:
            table[int(value)] = NODATA_INDEX
    for code, target in unseen_code_substitutes(scheme, NLCD_LEGEND).items():
        if 0 <= code < table.size and table[code] == UNKNOWN_CODE:
            table[code] = table[target]
    return table
