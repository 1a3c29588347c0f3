"""Translate at the model's ground sample distance and warp the results back onto the layer's own grid (the
resolution policy's second branch, :func:`~lcgan_qgis.core.rasters.resampling.plan_resolution`)."""

from __future__ import annotations

import contextlib
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import Canceled, InputRasterError
from ..model.contract import Direction
from ..rasters.raster import Grid
from ..rasters.resampling import warp_into
from ..storage.files import (
    SIDECAR_SUFFIX,
    AtomicFile,
    commit_all,
    output_folder,
    scratch_folder,
    stale_partial_messages,
)
from .plan import elevation_on
from .request import GridReader, IsCanceled, Log, Progress

if TYPE_CHECKING:
    from ..model.runtime import Model
    from .engine import TranslateOptions, TranslateResult

#: Share of the progress bar given to the engine when the result is resampled back afterwards.
TRANSLATE_SHARE = 0.9


def translate_resampled(model: Model, reader: GridReader, grid: Grid, output_path: str, options: TranslateOptions,
                        report: Progress, is_canceled: IsCanceled | None, log: Log, note: Log,
                        elevation_path: str | None = None) -> TranslateResult:
    """Translate on ``grid`` into a scratch folder beside the output, then warp the results onto the layer's grid.

    All or nothing: the outputs are warped into :class:`~lcgan_qgis.core.storage.files.AtomicFile` temporaries and
    moved into place together (:func:`~lcgan_qgis.core.storage.files.commit_all`), so a failure or a cancel keeps
    every earlier result.
    """
    from .engine import translate_checked

    categorical_input = model.contract.direction is Direction.LANDCOVER_TO_RGB
    native = Grid.of_info(reader.info)
    out = Path(output_path)
    confidence = options.confidence_path
    finals = [out] + ([Path(confidence)] if confidence else [])
    for message in stale_partial_messages(finals):
        note(message)
    with scratch_folder(output_folder(out)) as scratch, contextlib.ExitStack() as stack:
        coarse_out = scratch / "output.tif"
        coarse_conf = scratch / "confidence.tif" if confidence else None
        coarse_options = replace(options, confidence_path=str(coarse_conf) if coarse_conf else None, overwrite=True,
                                 overviews=False)  # (the warp builds the final file's)
        with contextlib.closing(reader.on_grid(grid, categorical=categorical_input)) as coarse_reader, \
                elevation_on(elevation_path, coarse_reader.info) as elevation:
            result = translate_checked(model, coarse_reader, coarse_out, coarse_options,
                                       lambda f: report(TRANSLATE_SHARE * f), is_canceled, elevation)
        if result.canceled:
            return result
        if not coarse_out.is_file():
            raise InputRasterError(f"Layer '{reader.info.name}': the engine wrote no output at the model's GSD.")
        warps = [(coarse_out, out, not categorical_input)]
        if coarse_conf is not None and confidence:
            warps.append((coarse_conf, Path(confidence), False))
        targets = []
        for _src, dst, _categorical in warps:
            targets.append(AtomicFile(dst, sidecars=(SIDECAR_SUFFIX,)))  # class names live in the .aux.xml
            stack.callback(targets[-1].abort)  # (nothing to do once committed)
        share = (1.0 - TRANSLATE_SHARE) / len(warps)
        try:
            for i, ((src, dst, categorical), target) in enumerate(zip(warps, targets)):
                warp_into(src, target.temp_path, dst, native, categorical,
                          progress=lambda f, i=i: report(TRANSLATE_SHARE + share * (i + f)), is_canceled=is_canceled)
        except Canceled:
            return replace(result, output_path=None, confidence_path=None, canceled=True)
        if is_canceled is not None and is_canceled():
            return replace(result, output_path=None, confidence_path=None, canceled=True)
        commit_all(targets)  # an earlier result is replaced only when every output is ready
        report(1.0)
        log(f"Resampled the result from {grid.pixel_size[0]:.3g} back to the layer's {native.pixel_size[0]:.3g} "
            "CRS units per pixel.")
        return replace(result, output_path=str(out), confidence_path=confidence)
