"""The lcgan Processing provider: ``lcgan:landcover_to_rgb`` and ``lcgan:rgb_to_landcover``."""

from .provider import LcganProvider

__all__ = ["LcganProvider"]
