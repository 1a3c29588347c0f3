"""How a model scales imagery to and from its [-1, 1] range: the radiometry of its contract (``fixed``: the
training imagery's values; ``percentile``: each raster's own percentile stretch) and the conversion of its output
to display bytes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..choices import RADIOMETRY_MODES
from ..errors import ContractError

#: The percentile stretch of imagery (low and high percentile mapped to -1 and +1): the radiometry's default, the
#: training data's, the realism measures' and the benchmark's.
STRETCH_PERCENTILES = (2.0, 98.0)


@dataclass(frozen=True)
class Radiometry:
    """How image pixel values map to the model's [-1, 1] range, per band.

    ``low[b]`` maps to -1 and ``high[b]`` to +1 (values beyond are clipped). ``low``/``high`` are the training
    imagery's ``percentiles`` (e.g. 2 % and 98 %). Mode ``fixed`` applies them to any input as they are (right
    for imagery of the training sensor and units); mode ``percentile`` computes the same percentiles on the input
    raster itself and maps those to [-1, 1] (right for other sensors, uint8 or float imagery).
    """

    mode: str
    low: tuple[float, ...]
    high: tuple[float, ...]
    percentiles: tuple[float, float] = STRETCH_PERCENTILES

    def __post_init__(self) -> None:
        if self.mode not in RADIOMETRY_MODES:
            raise ContractError(f"radiometry.mode must be one of {RADIOMETRY_MODES}, got {self.mode!r}.")
        if len(self.low) != len(self.high) or not self.low:
            raise ContractError(
                f"radiometry.low and radiometry.high need one value per band, got {len(self.low)} and {len(self.high)}."
            )
        for b, (lo, hi) in enumerate(zip(self.low, self.high), start=1):
            if not (np.isfinite(lo) and np.isfinite(hi) and hi > lo):
                raise ContractError(f"radiometry for band {b}: need finite low < high, got low={lo}, high={hi}.")
        p_lo, p_hi = self.percentiles
        if not 0.0 <= p_lo < p_hi <= 100.0:
            raise ContractError(f"radiometry.percentiles must satisfy 0 <= low < high <= 100, got {self.percentiles}.")

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (contract metadata, checkpoints, training's radiometry file): mode, low, high, percentiles."""
        return {"mode": self.mode, "low": list(self.low), "high": list(self.high),
                "percentiles": list(self.percentiles)}

    @classmethod
    def from_dict(cls, data: Any, source: str = "radiometry") -> Radiometry:
        """Read :meth:`to_dict`'s form (``mode`` defaults to ``percentile``, ``percentiles`` to 2-98).

        Values must be JSON's own types: a string mode, lists of numbers (never numbers given as strings, or
        booleans), two percentiles.

        Raises:
            ContractError: naming ``source``, for a missing or non-numeric ``low``/``high`` or invalid values.
        """
        if not isinstance(data, Mapping):
            raise ContractError(f"{source}: radiometry must be a JSON object, got {type(data).__name__}.")
        try:
            mode = data.get("mode", "percentile")
            if not isinstance(mode, str):
                raise ContractError(f"radiometry.mode must be a string, got {mode!r}.")
            return cls(
                mode=mode,
                low=_numbers(data, "low"),
                high=_numbers(data, "high"),
                percentiles=_numbers(data, "percentiles", STRETCH_PERCENTILES, length=2),  # type: ignore[arg-type]
            )
        except ContractError as exc:
            raise ContractError(f"{source}: {exc}") from None

    def explain(self, mode: str | None = None) -> str:
        """What ``mode`` (default: this radiometry's own) does with this model's values, in one clause."""
        span = ", ".join(f"{lo:g}-{hi:g}" for lo, hi in zip(self.low, self.high))
        meanings = {
            "percentile": f"this raster's own {self.percentiles[0]:g}-{self.percentiles[1]:g} % range is the "
                          "model's range",
            "fixed": f"pixel values are read in the training imagery's units, {span} per band",
        }
        return meanings.get(mode or self.mode, "unknown mode")

    def normalize(self, pixels: np.ndarray, low: Sequence[float] | None = None,
                  high: Sequence[float] | None = None) -> np.ndarray:
        """``(bands, ...)`` pixel values -> float32 in [-1, 1] using ``low``/``high`` (default: the model's)."""
        lo = np.asarray(self.low if low is None else low, dtype=np.float32).reshape(-1, *([1] * (pixels.ndim - 1)))
        hi = np.asarray(self.high if high is None else high, dtype=np.float32).reshape(lo.shape)
        out = (pixels.astype(np.float32, copy=False) - lo) * (2.0 / np.maximum(hi - lo, 1e-12)) - 1.0
        return np.clip(out, -1.0, 1.0, out=out)

    def denormalize(self, values: np.ndarray) -> np.ndarray:
        """Model output in [-1, 1] -> the training imagery's units (float32)."""
        lo = np.asarray(self.low, dtype=np.float32).reshape(-1, *([1] * (values.ndim - 1)))
        hi = np.asarray(self.high, dtype=np.float32).reshape(lo.shape)
        return (np.clip(values, -1.0, 1.0) + 1.0) * 0.5 * (hi - lo) + lo


def _numbers(table: Mapping[str, Any], key: str, default: Sequence[float] | None = None,
             length: int | None = None) -> tuple[float, ...]:
    """``table[key]`` as a tuple of floats: a list of JSON numbers (not strings or booleans)."""
    if key not in table and default is not None:
        return tuple(default)
    values = table.get(key)
    if not isinstance(values, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                               for v in values):
        raise ContractError(f"radiometry needs numeric lists 'low' and 'high' (and 'percentiles'): '{key}' is "
                            f"{values!r}.")
    if length is not None and len(values) != length:
        raise ContractError(f"radiometry.{key} must hold {length} numbers, got {values!r}.")
    return tuple(float(v) for v in values)


def to_uint8(values: np.ndarray) -> np.ndarray:
    """Model output in [-1, 1] -> display uint8 0..255 (rounded)."""
    return np.rint((np.clip(values, -1.0, 1.0) + 1.0) * 127.5).astype(np.uint8)
