"""How far one land-cover pixel's change reaches in the bundled generator's output (``python -m tools.bench.scenario
reach``; docs/scenarios.md, the exact mode's margin)."""

from __future__ import annotations

import numpy as np


def one_pixel_reach(size: int = 384, maps: int = 2) -> dict[str, list[int]]:
    """How far one land-cover pixel's change reaches in the bundled generator's output (onnxruntime fp32, one
    thread): the Chebyshev radius of output pixels that moved at all, by more than 0.05 DN and by more than 0.5 DN
    (of 255), per random map (8 px class patches, normal noise)."""
    from lcgan_qgis.core.model.contract import Direction
    from lcgan_qgis.core.model.runtime import load_model
    from lcgan_qgis.core.resources import bundled_model_path

    model = load_model(bundled_model_path(Direction.LANDCOVER_TO_RGB), "cpu", 1, "fp32", "onnxruntime")
    contract = model.contract
    k = contract.num_classes
    rng = np.random.default_rng(0)
    reach: dict[str, list[int]] = {"any": [], "over_0.05_dn": [], "over_0.5_dn": []}
    for trial in range(maps):
        classes = rng.integers(0, k, (size // 8, size // 8)).repeat(8, 0).repeat(8, 1)
        x = np.zeros((1, contract.in_channels, size, size), np.float32)
        x[0, classes, np.arange(size)[:, None], np.arange(size)[None, :]] = 1.0
        x[0, k:] = rng.standard_normal((contract.in_channels - k, size, size))
        c = size // 2 + trial
        moved = x.copy()
        moved[0, :k, c, c] = 0.0
        moved[0, (classes[c, c] + 5) % k, c, c] = 1.0
        diff = np.abs(model.run(moved)[0] - model.run(x)[0]).max(axis=0) * 127.5  # in DN of 255
        for key, threshold in (("any", 0.0), ("over_0.05_dn", 0.05), ("over_0.5_dn", 0.5)):
            ys, xs = np.nonzero(diff > threshold)
            reach[key].append(int(max(np.abs(ys - c).max(), np.abs(xs - c).max())) if ys.size else 0)
    return reach
