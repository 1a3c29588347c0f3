"""The terrain part of a model contract (:class:`TerrainInputs`): which terrain channels a terrain-aware land cover
-> RGB model reads, how they are derived, the DEM unit it expects, and the checks of the sun a run may choose. The
channels themselves are derived in :mod:`lcgan_qgis.core.terrain.channels`."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ContractError

#: Channel names a model can read, in the order they are stacked after the one-hot classes.
TERRAIN_CHANNELS = ("hillshade", "slope", "relative_elevation")
#: Sun over the Zion sample (centre 37.371 N, 113.046 W) at the Landsat 8 scene LC80380342015230, 2015-08-18
#: 18:00 UTC, by :func:`~lcgan_qgis.core.terrain.channels.solar_position`: azimuth 132.3 degrees (south-east),
#: elevation 57.6 degrees.
ZION_SUN_AZIMUTH_DEG = 132.3
ZION_SUN_ELEVATION_DEG = 57.6
DEFAULT_RELIEF_RADIUS_M = 300.0
DEFAULT_RELIEF_SCALE_M = 50.0


@dataclass(frozen=True)
class TerrainInputs:
    """The terrain part of a model contract: which channels, how they are derived, the DEM they expect.

    Attributes:
        channels: names from :data:`TERRAIN_CHANNELS`, in the model's channel order.
        sun_azimuth_deg: default sun azimuth for the hillshade, degrees clockwise from north (the training
            imagery's sun); users may change it per run.
        sun_elevation_deg: default sun elevation above the horizon, degrees.
        relief_radius_m: radius of the local mean of ``relative_elevation``, metres on the ground.
        relief_scale_m: height difference that maps ``relative_elevation`` to 1/sqrt(2) (about 0.71), metres.
        dem_metres_per_unit: the DEM's vertical unit the model expects, in metres (1 = metres, 0.3048 = feet).
    """

    channels: tuple[str, ...]
    sun_azimuth_deg: float = ZION_SUN_AZIMUTH_DEG
    sun_elevation_deg: float = ZION_SUN_ELEVATION_DEG
    relief_radius_m: float = DEFAULT_RELIEF_RADIUS_M
    relief_scale_m: float = DEFAULT_RELIEF_SCALE_M
    dem_metres_per_unit: float = 1.0

    def __post_init__(self) -> None:
        check_channels(self.channels, "terrain.channels")
        check_sun(self.sun_azimuth_deg, self.sun_elevation_deg, "terrain")
        for name in ("relief_radius_m", "relief_scale_m", "dem_metres_per_unit"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value)
                                                                                     and value > 0):
                raise ContractError(f"terrain.{name} must be a positive number, got {value!r}.")

    def to_dict(self) -> dict[str, Any]:
        return {"channels": list(self.channels), "sun_azimuth_deg": self.sun_azimuth_deg,
                "sun_elevation_deg": self.sun_elevation_deg, "relief_radius_m": self.relief_radius_m,
                "relief_scale_m": self.relief_scale_m, "dem_metres_per_unit": self.dem_metres_per_unit}

    @classmethod
    def from_dict(cls, data: Any, source: str = "model") -> TerrainInputs:
        """Parse the contract's ``terrain`` object; errors name ``source`` and the key."""
        if not isinstance(data, Mapping):
            raise ContractError(f"{source}: metadata key 'terrain' must be a JSON object or null.")
        unknown = sorted(set(data) - set(cls.__dataclass_fields__))
        if unknown:
            raise ContractError(f"{source}: unknown terrain key(s) {unknown}; this lcgan reads "
                                f"{sorted(cls.__dataclass_fields__)} (update lcgan?).")
        channels = data.get("channels")
        if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels):
            raise ContractError(f"{source}: terrain.channels must be a list of names from {TERRAIN_CHANNELS}.")
        values = {k: data[k] for k in cls.__dataclass_fields__ if k in data and k != "channels"}
        for key, value in values.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ContractError(f"{source}: terrain.{key} must be a number, got {value!r}.")
        try:
            return cls(channels=tuple(channels), **{k: float(v) for k, v in values.items()})
        except ContractError as exc:
            raise ContractError(f"{source}: {exc}") from None

    def describe(self) -> str:
        """One line for ``info`` and the dock: channels, sun, relief (when read) and DEM unit."""
        unit = {1.0: "metres", 0.3048: "feet"}.get(self.dem_metres_per_unit, f"{self.dem_metres_per_unit:g} m")
        relief = (f"; relief radius {self.relief_radius_m:g} m, scale {self.relief_scale_m:g} m"
                  if "relative_elevation" in self.channels else "")
        return (f"{', '.join(self.channels)} from a DEM in {unit}; sun azimuth {self.sun_azimuth_deg:g} deg, "
                f"elevation {self.sun_elevation_deg:g} deg{relief}")


def check_channels(channels: Any, where: str) -> None:
    """``channels`` must be a non-empty tuple of distinct names from :data:`TERRAIN_CHANNELS`."""
    if not channels or len(set(channels)) != len(channels) or any(c not in TERRAIN_CHANNELS for c in channels):
        raise ContractError(f"{where} must be distinct names from {TERRAIN_CHANNELS}, got {list(channels)!r}.")


def check_sun(azimuth_deg: Any, elevation_deg: Any, where: str, optional: bool = False) -> None:
    """Sun azimuth in [0, 360) and elevation in (0, 90] degrees, else ContractError naming ``where``
    (``optional``: ``None`` stands for the model's value and passes)."""
    for name, value, ok in (("sun_azimuth_deg", azimuth_deg, lambda v: 0.0 <= v < 360.0),
                            ("sun_elevation_deg", elevation_deg, lambda v: 0.0 < v <= 90.0)):
        if value is None and optional:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not ok(float(value)):
            want = "in [0, 360) degrees clockwise from north" if "azimuth" in name else "in (0, 90] degrees"
            raise ContractError(f"{where}: {name} must be {want}, got {value!r}.")
