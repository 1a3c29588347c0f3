"""The errors of the training package, inside lcgan's one hierarchy (:mod:`lcgan_qgis.core.errors`).

Catching :class:`~lcgan_qgis.core.errors.LcganError` catches every error lcgan raises on purpose, in the plugin
and in training alike; the command line turns them into one-line messages.
"""

from __future__ import annotations

from lcgan_qgis.core.errors import ContractError, LcganError


class ConfigError(LcganError, ValueError):
    """A config file or override is invalid (unknown key, wrong type, bad value)."""


class TrainingError(LcganError, RuntimeError):
    """Training cannot go on (diverged loss, unusable checkpoint, incompatible resume)."""


class ExportError(ContractError):
    """An export failed or its onnxruntime output differs from torch beyond the tolerance."""
