"""Realism metrics of generated imagery (pure numpy): patches, checkerboard index, per-class texture.

Arrays follow the project's axis order: images ``(bands, rows, cols)``, masks and class indices ``(rows, cols)``,
feature sets ``(samples, features)``. Each function says what it measures and in which units. The classifier
two-sample test (it needs a network) is in :mod:`.two_sample`, the judge's features in :mod:`.judge`, the Frechet
distance in :mod:`.frechet`, the peak index in :mod:`.periodic`, the relief correlation in :mod:`.relief`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lcgan_qgis.core.model.contract import STRETCH_PERCENTILES, Radiometry
from lcgan_qgis.core.model.scheme import ClassScheme

CHECKERBOARD_NEIGHBOUR_BINS = (1, 2)  # bins around a period-2 frequency that form its reference
TEXTURE_WINDOW_PX = 5  # local standard deviation over 5x5 pixels (150 m at 30 m GSD)


# -- patches --------------------------------------------------------------------------------------------------------
def grid_patches(mask: np.ndarray, patch_px: int, stride_px: int | None = None) -> list[tuple[int, int]]:
    """Top-left ``(row, col)`` of the ``patch_px`` squares on a regular grid that lie wholly where ``mask`` is True.

    The grid starts at the mask's bounding box (so an area's first row of patches is not lost to the grid's phase);
    ``stride_px`` defaults to ``patch_px`` (non-overlapping patches, i.e. disjoint ground); 1 gives every position.
    """
    stride = patch_px if stride_px is None else stride_px
    rows, cols = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
    if rows.size == 0 or mask.shape[0] < patch_px or mask.shape[1] < patch_px:
        return []
    integral = np.pad(np.cumsum(np.cumsum(mask.astype(np.int64), axis=0), axis=1), ((1, 0), (1, 0)))
    p = patch_px
    inside = integral[p:, p:] - integral[:-p, p:] - integral[p:, :-p] + integral[:-p, :-p]  # top-left -> count
    full = np.zeros(inside.shape, bool)
    r0, c0 = int(rows[0]), int(cols[0])
    full[r0::stride, c0::stride] = inside[r0::stride, c0::stride] == p * p
    return [(int(r), int(c)) for r, c in zip(*np.nonzero(full), strict=True)]


def cut_patches(image: np.ndarray, corners: Sequence[tuple[int, int]], patch_px: int) -> np.ndarray:
    """``(n, bands, patch_px, patch_px)`` copies of ``image`` at ``corners`` (from :func:`grid_patches`)."""
    if not corners:
        return np.zeros((0, image.shape[0], patch_px, patch_px), image.dtype)
    return np.stack([image[:, r:r + patch_px, c:c + patch_px] for r, c in corners])


def percentile_stretch(image: np.ndarray, valid: np.ndarray,
                       percentiles: tuple[float, float] = STRETCH_PERCENTILES) -> np.ndarray:
    """``image`` mapped per band from its own ``percentiles`` (of the valid pixels) to [-1, 1], clipped; float32.

    Used where units must not count (the two-sample test): each raster is stretched by its own statistics.
    """
    values = image[:, valid].astype(np.float64)
    low = np.percentile(values, percentiles[0], axis=1)
    high = np.maximum(np.percentile(values, percentiles[1], axis=1), low + 1e-6)
    return Radiometry("fixed", tuple(map(float, low)), tuple(map(float, high)), percentiles).normalize(image)


def gaussian_blur(image: np.ndarray, sigma_px: float) -> np.ndarray:
    """``(bands, rows, cols)`` image blurred by a Gaussian of ``sigma_px`` pixels (separable, reflected edges)."""
    radius = max(1, int(np.ceil(3.0 * sigma_px)))
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (offsets / sigma_px) ** 2)
    kernel /= kernel.sum()
    out = image.astype(np.float64)
    for axis in (1, 2):
        pad = [(0, 0)] * 3
        pad[axis] = (radius, radius)
        padded = np.pad(out, pad, mode="reflect")
        length = out.shape[axis]
        out = sum(w * np.take(padded, np.arange(k, k + length), axis=axis) for k, w in enumerate(kernel))
    return out.astype(np.float32)


# -- checkerboard index ---------------------------------------------------------------------------------------------
PERIOD2_FREQUENCIES = {"fy0.5_fx0.5": (1, 1), "fy0_fx0.5": (0, 1), "fy0.5_fx0": (1, 0)}  # in half-cycles/px


def _period2_masks(patch_px: int) -> dict[str, tuple[tuple[int, int], np.ndarray]]:
    """Per period-2 frequency of a ``patch_px`` FFT (unshifted): its bin and the mask of its reference bins.

    (0.5, 0.5) is compared with the bins within ``CHECKERBOARD_NEIGHBOUR_BINS`` of it in both axes; a frequency on
    an axis, (0, 0.5) or (0.5, 0), with the bins that far along the same axis only: the axes also carry the
    leakage of each patch's cut edges, so an on-axis bin must be compared with on-axis bins (measured on the Zion
    imagery: with the full neighbourhood a sigma-1 blur scored 1.5 there, with the axis bins 1.07).
    """
    half = patch_px // 2
    index = np.arange(patch_px)
    out = {}
    for name, (fy, fx) in PERIOD2_FREQUENCIES.items():
        fy, fx = half * fy, half * fx
        dy = np.minimum(np.abs(index - fy), patch_px - np.abs(index - fy))[:, None]
        dx = np.minimum(np.abs(index - fx), patch_px - np.abs(index - fx))[None, :]
        if fy == 0:
            near = (dy == 0) & np.isin(dx, CHECKERBOARD_NEIGHBOUR_BINS)
        elif fx == 0:
            near = (dx == 0) & np.isin(dy, CHECKERBOARD_NEIGHBOUR_BINS)
        else:
            near = (np.maximum(dy, dx) <= max(CHECKERBOARD_NEIGHBOUR_BINS)) & ((dy > 0) | (dx > 0))
        out[name] = ((fy, fx), near)
    return out


def period2_power_ratio(patches: np.ndarray) -> dict[str, np.ndarray]:
    """Per band and period-2 frequency: the spectral power there over the mean power of its neighbouring bins.

    ``patches`` is ``(n, bands, p, p)`` with ``p`` even. Each patch band has its mean removed and its 2-D power
    spectrum is summed over all patches. The period-2 frequencies (fy, fx) = (0.5, 0.5), (0, 0.5) and (0.5, 0)
    cycles/px are where the transposed-convolution checkerboard of Odena et al. (2016, "Deconvolution and
    Checkerboard Artifacts") puts its energy; each is compared with the bins up to 2 away from it
    (:func:`_period2_masks`). Returns
    ``{name: (bands,) ratio}`` for each of :data:`PERIOD2_FREQUENCIES`; unitless. Natural imagery has a smooth
    spectrum there (ratios of about 1-2 on the Zion Landsat imagery).
    """
    n, _bands, p, q = patches.shape
    if p != q or p % 2 or p < 8 or n == 0:
        raise ValueError(f"need >= 1 square patch with an even side >= 8 px, got {patches.shape}.")
    x = patches.astype(np.float64)
    x = x - x.mean(axis=(2, 3), keepdims=True)
    power = (np.abs(np.fft.fft2(x)) ** 2).sum(axis=0)  # unshifted: index p // 2 is 0.5 cycles/px
    return {name: power[:, fy, fx] / np.maximum(power[:, near].mean(axis=1), 1e-30)
            for name, ((fy, fx), near) in _period2_masks(p).items()}


def checkerboard_index(generated: np.ndarray, real: np.ndarray, mask: np.ndarray, patch_px: int = 32) -> dict:
    """Period-2 power ratio (:func:`period2_power_ratio`) of generated over real imagery, on the non-overlapping
    ``patch_px`` patches inside ``mask``.

    ``generated`` and ``real``: ``(bands, rows, cols)`` of the same ground; the ratios are scale-free, so their
    units need not match. Per frequency, the index is the mean over bands of generated / real (1 = like real
    imagery, 20 = twenty times the period-2 power relative to the neighbouring frequencies; None where the real
    imagery has no power there at all, e.g. flat synthetic colours). Returns ``index``, the WORST frequency's (a
    checkerboard at any one of them is a defect), ``per_frequency``, and both images' own ratios per band.
    """
    corners = grid_patches(mask, patch_px)
    if not corners:
        raise ValueError(f"no {patch_px} px patch lies wholly inside the mask.")
    gen = period2_power_ratio(cut_patches(generated, corners, patch_px))
    ref = period2_power_ratio(cut_patches(real, corners, patch_px))
    per_frequency: dict[str, float | None] = {}
    for name in PERIOD2_FREQUENCIES:
        with np.errstate(invalid="ignore", divide="ignore"):
            per_band = np.where(ref[name] > 0, gen[name] / ref[name], np.nan)  # no real power there: undefined
        finite = per_band[np.isfinite(per_band)]
        per_frequency[name] = round(float(finite.mean()), 3) if finite.size else None
    defined = [v for v in per_frequency.values() if v is not None]
    return {"index": max(defined) if defined else None, "per_frequency": per_frequency,
            "generated_ratio": {k: _rounded(v, 3) for k, v in gen.items()},
            "real_ratio": {k: _rounded(v, 3) for k, v in ref.items()}, "patches": len(corners), "patch_px": patch_px}


# -- per-class texture ----------------------------------------------------------------------------------------------
def _box_sum(x: np.ndarray, size: int) -> np.ndarray:
    """Sum over the ``size`` x ``size`` box centred on each pixel of a ``(rows, cols)`` array (zero outside)."""
    half = size // 2
    padded = np.pad(x, ((half + 1, half), (half + 1, half)))
    integral = padded.cumsum(axis=0).cumsum(axis=1)
    return (integral[size:, size:] - integral[:-size, size:] - integral[size:, :-size] + integral[:-size, :-size])


def local_std(image: np.ndarray, valid: np.ndarray, size_px: int = TEXTURE_WINDOW_PX) -> tuple[np.ndarray, np.ndarray]:
    """Per band, the standard deviation over the ``size_px`` square around each pixel (the image's units).

    Returns ``((bands, rows, cols) float64, (rows, cols) bool)``: a pixel counts only where its whole window is
    valid and inside the raster.
    """
    full = _box_sum(valid.astype(np.float64), size_px) >= size_px * size_px - 0.5
    out = np.zeros(image.shape, np.float64)
    area = float(size_px * size_px)
    for b in range(image.shape[0]):
        x = np.where(valid, image[b].astype(np.float64), 0.0)
        mean = _box_sum(x, size_px) / area
        out[b] = np.sqrt(np.maximum(_box_sum(x * x, size_px) / area - mean * mean, 0.0))
    return out, full


def gradient_magnitude(image: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per band, ``sqrt(gx^2 + gy^2)`` of central differences (image units per pixel); valid where the 3x3
    neighbourhood is valid and inside the raster."""
    ok = _box_sum(valid.astype(np.float64), 3) >= 8.5
    x = image.astype(np.float64)
    gx = np.zeros_like(x)
    gy = np.zeros_like(x)
    gx[:, :, 1:-1] = (x[:, :, 2:] - x[:, :, :-2]) / 2.0
    gy[:, 1:-1, :] = (x[:, 2:, :] - x[:, :-2, :]) / 2.0
    return np.hypot(gx, gy), ok


def class_means(values: np.ndarray, class_idx: np.ndarray, valid: np.ndarray,
                n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-class pixel counts ``(n,)`` and per-band means ``(n, bands)`` of ``(bands, rows, cols)`` values on
    ``valid`` (NaN where a class has no pixel)."""
    idx = class_idx[valid].ravel()
    counts = np.bincount(idx, minlength=n_classes).astype(np.float64)
    means = np.full((n_classes, values.shape[0]), np.nan)
    present = counts > 0
    for b in range(values.shape[0]):
        total = np.bincount(idx, weights=values[b][valid].ravel(), minlength=n_classes)
        means[present, b] = total[present] / counts[present]
    return counts.astype(np.int64), means


def compare_textures(real: np.ndarray, generated: np.ndarray, class_idx: np.ndarray, valid: np.ndarray,
                     scheme: ClassScheme, band_names: Sequence[str], size_px: int = TEXTURE_WINDOW_PX) -> dict:
    """Per-class texture of real vs generated imagery: mean local standard deviation and gradient magnitude.

    Both images in the same units (image units, per band). Per class: real and generated means, and their ratio
    generated / real (1 = as much texture as real imagery; a flat colour rendering gives well below 1, a
    checkerboard above). Summary per band, pixel-weighted over the classes: the mean absolute error of the class
    means (image units) and the mean ratio.
    """
    n = len(scheme)
    out: dict = {"bands": list(band_names), "window_px": size_px, "per_class": {}}
    stats = {}
    for name, (real_values, ok_real), (gen_values, ok_gen) in (
        ("local_std", local_std(real, valid, size_px), local_std(generated, valid, size_px)),
        ("gradient", gradient_magnitude(real, valid), gradient_magnitude(generated, valid)),
    ):
        ok = ok_real & ok_gen & valid
        counts, real_mean = class_means(real_values, class_idx, ok, n)
        _, gen_mean = class_means(gen_values, class_idx, ok, n)
        present = counts > 0
        weights = (counts[present] / max(counts[present].sum(), 1))[:, None]
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = gen_mean / real_mean
        finite = np.isfinite(ratio[present])
        out[f"{name}_mean_abs_error"] = _rounded((weights * np.abs(gen_mean[present] - real_mean[present])).sum(0))
        out[f"{name}_ratio"] = _rounded((weights * np.where(finite, ratio[present], 0.0)).sum(0)
                                        / np.maximum((weights * finite).sum(0), 1e-12), 3)
        stats[name] = (counts, real_mean, gen_mean, ratio)
    for i, cls in enumerate(scheme.classes):
        entry: dict = {"name": cls.name, "pixels": int(stats["local_std"][0][i])}
        for name, (_counts, real_mean, gen_mean, ratio) in stats.items():
            entry[f"real_{name}"] = _rounded(real_mean[i])
            entry[f"generated_{name}"] = _rounded(gen_mean[i])
            entry[f"{name}_ratio"] = _rounded(ratio[i], 3)
        out["per_class"][str(cls.code)] = entry
    return out


def _rounded(values: np.ndarray, digits: int = 2) -> list[float | None]:
    return [None if not np.isfinite(v) else round(float(v), digits) for v in np.atleast_1d(values)]
