"""How much a model's answer depends on the inference window it is run with (``TranslateOptions.window_px``).

A translation should not depend on how the raster is cut: per-window normalisation statistics (InstanceNorm) make
it do so. Both models run through the core engine over the same raster with several window sizes; reported per
area: the share of land-cover pixels that change between two sizes (RGB -> land cover), the PSNR between the
imagery of two sizes (land cover -> RGB, dB on the engine's 0-255 display scale; higher = more alike, inf =
identical), and the RGB -> land cover accuracy at each size (if it moves with the window, the window is a tuning
knob). The engine fits each requested size to the raster (:func:`lcgan_qgis.core.run.tiling.fit_window`), so the
windows actually used are reported too.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import combinations

import numpy as np

from lcgan_qgis.core.model.contract import ModelContract
from lcgan_qgis.core.model.scheme import ClassScheme
from lcgan_qgis.core.run.tiling import fit_window

from .metrics import accuracy, confusion_matrix, psnr_db

Output = tuple[np.ndarray, np.ndarray]  # a translated raster: (bands, rows, cols) pixels and (rows, cols) validity


def runnable_sizes(sizes_px: tuple[int, ...] | list[int], overlap_px: int) -> tuple[list[int], dict[str, str]]:
    """The requested window sizes the engine can run at ``overlap_px`` (wider than twice it), and why the others
    are skipped (``{size: reason}``)."""
    runnable = [s for s in sizes_px if s > 2 * overlap_px]
    return runnable, {str(s): f"not above twice the {overlap_px} px overlap" for s in sizes_px if s not in runnable}


def fitted_windows(contract: ModelContract, rows: int, cols: int, window_px: int, overlap_px: int | None) -> list[int]:
    """``[window_rows_px, window_cols_px]`` the engine really uses for a requested ``window_px``."""
    overlap = contract.overlap_px if overlap_px is None else overlap_px
    m = contract.size_multiple_px
    return [fit_window(rows, window_px, overlap, m), fit_window(cols, window_px, overlap, m)]


def compare_windows(landcover: Mapping[int, Output], imagery: Mapping[int, Output], true_idx: np.ndarray,
                    true_valid: np.ndarray, masks: Mapping[str, np.ndarray], scheme: ClassScheme) -> dict:
    """Pairwise comparison of the outputs of each window size, inside each of ``masks``.

    Args:
        landcover: window size (px) -> the RGB -> land cover output (codes) at that size.
        imagery: window size (px) -> the land cover -> RGB output (display uint8) at that size.
        true_idx, true_valid: the real land cover as class indices, for the accuracy per size.
        masks: area name -> ``(rows, cols)`` bool.

    Returns:
        ``{"rgb_to_landcover": {area: {"pixels", "changed_share": {"128_vs_256": share, ...},
        "accuracy": {"128": ...}}}, "landcover_to_rgb": {area: {"pixels", "psnr_db": {"128_vs_256": dB}}}}``;
        a PSNR of null means identical imagery.
    """
    n = len(scheme)
    indices = {s: scheme.codes_to_indices(codes[0]) for s, (codes, _v) in landcover.items()}
    lc_pairs = list(combinations(sorted(landcover), 2))
    rgb_pairs = list(combinations(sorted(imagery), 2))
    out: dict = {"rgb_to_landcover": {}, "landcover_to_rgb": {}}
    for area, mask in masks.items():
        both = mask & true_valid
        for s, (_codes, valid) in landcover.items():
            both &= valid & indices[s][1]
        out["rgb_to_landcover"][area] = {
            "pixels": int(both.sum()),
            "changed_share": {f"{a}_vs_{b}": round(float((indices[a][0] != indices[b][0])[both].mean()), 4)
                              for a, b in lc_pairs},
            "accuracy": {str(s): round(accuracy(confusion_matrix(true_idx[both], indices[s][0][both], n)), 4)
                         for s in sorted(landcover)},
        }
        ok = mask & true_valid
        for _pixels, valid in imagery.values():
            ok &= valid
        psnr = {f"{a}_vs_{b}": psnr_db(imagery[a][0][:3, ok], imagery[b][0][:3, ok]) for a, b in rgb_pairs}
        out["landcover_to_rgb"][area] = {"pixels": int(ok.sum()),
                                         "psnr_db": {k: None if np.isinf(v) else v for k, v in psnr.items()}}
    return out

