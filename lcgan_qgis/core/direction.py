"""The two translations lcgan makes (:class:`Direction`): land cover -> synthetic RGB and RGB imagery -> land cover.
Every layer names a model's direction with this one enum (the contract, the choices' labels, the interfaces)."""

from __future__ import annotations

from enum import Enum
from typing import Any

from .errors import ContractError


class Direction(str, Enum):
    """Which way a model translates."""

    LANDCOVER_TO_RGB = "landcover_to_rgb"
    RGB_TO_LANDCOVER = "rgb_to_landcover"

    @classmethod
    def parse(cls, value: Any) -> Direction:
        try:
            return cls(value)
        except ValueError:
            choices = ", ".join(d.value for d in cls)
            raise ContractError(f"Unknown direction {value!r}; choose one of: {choices}.") from None
