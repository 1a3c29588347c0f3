"""The files lcgan writes: one import for the rules split by concern in this package.

- :mod:`.paths`: which output paths may be written (:func:`check_output_targets`, :func:`same_file`,
  :func:`output_folder`); the files an input really reads, and the run's check with them, are
  :func:`~lcgan_qgis.core.rasters.sources.input_files` and :func:`~lcgan_qgis.core.rasters.sources.check_output_paths`
  (storage imports no rasters module: it lies below them).
- :mod:`.atomic`: :class:`AtomicFile` and :func:`commit_all` (whole or not at all).
- :mod:`.scratch`: :func:`scratch_folder` (a run's hidden working folder).
- :mod:`.ownership`: what lcgan may delete (the run's ledger) and the cleanup of killed runs
  (:func:`remove_stale_partials`).
"""

from __future__ import annotations

from .atomic import PARTIAL_MARK, PARTIAL_STEM_MAX_BYTES, AtomicFile, commit_all
from .ownership import remove_stale_partials, stale_partial_messages
from .paths import (
    DEFAULT_NAME_MAX,
    FILE_MODE,
    GEOTIFF_SUFFIXES,
    SIDECAR_SUFFIX,
    check_output_targets,
    name_max,
    output_folder,
    same_file,
)
from .scratch import SCRATCH_PREFIX, scratch_folder

__all__ = ["DEFAULT_NAME_MAX", "FILE_MODE", "GEOTIFF_SUFFIXES",
           "PARTIAL_MARK", "PARTIAL_STEM_MAX_BYTES", "SCRATCH_PREFIX", "SIDECAR_SUFFIX", "AtomicFile",
           "check_output_targets", "commit_all", "name_max", "output_folder", "remove_stale_partials",
           "same_file", "scratch_folder", "stale_partial_messages"]
