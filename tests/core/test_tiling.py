"""Tiling geometry: windows inside the raster, enough overlap, weights summing to exactly 1 everywhere."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lcgan_qgis.core.run.tiling import MIN_WINDOW_PX, axis_starts, axis_tiling, fit_window, make_tiling, ramp


@settings(max_examples=300, deadline=None)
@given(length=st.integers(1, 3000), window=st.integers(2, 160).map(lambda k: 4 * k), data=st.data())
def test_axis_tiling_covers_inside_and_sums_to_one(length: int, window: int, data: st.DataObject) -> None:
    overlap = data.draw(st.integers(0, (window - 1) // 2))
    axis = axis_tiling(length, window, overlap, 4)
    total = np.zeros(length)
    for i, start in enumerate(axis.starts):
        assert start >= 0 and axis.stop(i) <= length  # never outside the raster
        total[start:axis.stop(i)] += axis.weights[i]
        if i:
            assert axis.stop(i - 1) - start >= overlap  # at least the requested overlap
    np.testing.assert_allclose(total, 1.0, atol=1e-6)
    assert axis.padded % 4 == 0 and axis.padded >= axis.extent
    for i, start in enumerate(axis.starts):  # every input starts at phase 0 and holds the window
        assert (start - axis.phase(i)) % 4 == 0 and axis.phase(i) + axis.extent <= axis.input_size
    assert axis.lead == (4 if any(s % 4 for s in axis.starts) else 0) and axis.input_size % 4 == 0
    if length < window:
        assert axis.count == 1 and axis.padded >= min(MIN_WINDOW_PX, window)


def test_weights_fall_smoothly_to_the_window_edges() -> None:
    axis = axis_tiling(1000, 256, 32, 4)
    first, middle = axis.weights[0], axis.weights[1]
    assert first[0] == pytest.approx(1.0)  # the raster edge keeps full weight
    assert middle[0] < 0.01 and middle[len(middle) // 2] == pytest.approx(1.0)
    assert np.abs(np.diff(middle)).max() < 0.06  # no step: the largest jump is a ramp step


def test_ramp_is_complementary() -> None:
    r = ramp(17)
    np.testing.assert_allclose(r + r[::-1], 1.0, atol=1e-12)


def test_starts_spread_evenly() -> None:
    assert axis_starts(1000, 256, 32) == (0, 186, 372, 558, 744)
    assert axis_starts(1000, 256, 32, 4) == (0, 184, 372, 560, 744)  # in phase: multiples of 4 but the last
    assert axis_starts(100, 256, 32) == (0,)


def test_off_phase_windows_read_a_lead_from_phase_0() -> None:
    axis = axis_tiling(1019, 384, 64, 4)  # the last window (635) cannot start at a multiple of 4
    assert axis.starts == (0, 316, 635) and axis.lead == 4 and axis.input_size == 388
    assert [axis.phase(i) for i in range(3)] == [0, 0, 3]
    part = axis.covering(600, 700)  # a part of the axis keeps the whole axis's phases and input size
    assert [part.offset + s for s in part.starts] == [316, 635] and [part.phase(i) for i in range(2)] == [0, 3]
    assert part.input_size == 388
    tiling = make_tiling(1019, 1024, 384, 384, 64, 4)
    assert tiling.cols.lead == 0 and tiling.padded_shape == (388, 384)
    window, offset = tiling.input_window(2, 0, 1019, 1024)  # read from 632; past the raster's end is reflected
    assert (window.row_off, window.height, offset) == (632, 387, (3, 0))
    assert axis_tiling(1024, 384, 64, 4).lead == 0 and axis_tiling(300, 384, 64, 4).input_size == 300


@settings(max_examples=200, deadline=None)
@given(length=st.integers(1, 5000), target=st.integers(16, 300).map(lambda k: 4 * k), overlap=st.integers(0, 40))
def test_fit_window_never_needs_more_windows(length: int, target: int, overlap: int) -> None:
    if 2 * overlap >= target:
        return
    fitted = fit_window(length, target, overlap, 4)
    assert fitted % 4 == 0 and 2 * overlap < fitted
    if length > target:
        assert fitted <= target
        assert len(axis_starts(length, fitted, overlap)) == len(axis_starts(length, target, overlap))


def test_grid_weights_are_a_partition_of_unity_in_2d() -> None:
    tiling = make_tiling(300, 517, 128, 96, 24, 4)
    total = np.zeros((300, 517))
    for r in range(tiling.rows.count):
        for c in range(tiling.cols.count):
            rows, cols = tiling.window(r, c).toslices()
            total[rows, cols] += tiling.weight(r, c)
    np.testing.assert_allclose(total, 1.0, atol=1e-6)
