"""The lcgan Processing provider: ``lcgan:landcover_to_rgb``, ``lcgan:rgb_to_landcover`` and, with Dask,
``lcgan:translate_mosaic``; one algorithm per file over :mod:`.base`."""

from .provider import LcganProvider

__all__ = ["LcganProvider"]
