"""The one error hierarchy of lcgan.

Every error the core raises derives from :class:`LcganError`; I/O errors also derive from :class:`OSError` and
input errors from :class:`ValueError`, so callers can catch either. Messages name the file, layer, band or value at
fault and say what to do; the QGIS adapters show them as they are (never a traceback).
"""

from __future__ import annotations


class LcganError(Exception):
    """Base class of every error lcgan raises on purpose."""


class ContractError(LcganError, ValueError):
    """A model's metadata is missing, malformed, or disagrees with its graph."""


class SchemeError(LcganError, ValueError):
    """A class scheme (codes, names, colours) is invalid."""


class ModelFileError(LcganError, OSError):
    """A model file is missing, unreadable, truncated or not ONNX."""


class InputRasterError(LcganError, ValueError):
    """An input raster cannot be used as given (wrong bands, type, codes, georeference...)."""


class OutputError(LcganError, OSError):
    """An output cannot be written (folder, permissions, disk full, same as input...)."""


class OptionError(LcganError, ValueError):
    """A run option is invalid (overlap, window size, batch size, area of interest...)."""


class DeviceError(LcganError, RuntimeError):
    """The requested execution device cannot be used."""


class ClusterError(LcganError, RuntimeError):
    """A distributed run cannot start or did not finish (Dask missing, scheduler unreachable, a tile failed)."""


class Canceled(LcganError):  # noqa: N818 (a state, not a fault)
    """The user cancelled the run; nothing was written."""
