"""The run choices (core/choices.py): one list each, the words every interface shows, unknown names refused with
the choices listed, and the bounds the interfaces offer."""

from __future__ import annotations

import pytest

from lcgan_qgis.core.choices import (
    BACKEND_LABELS,
    BACKENDS,
    DEVICE_LABELS,
    DEVICES,
    MAX_OVERLAP_PX,
    MIN_TILE_PX,
    PRECISION_LABELS,
    PRECISIONS,
    RADIOMETRY_CHOICES,
    RADIOMETRY_LABELS,
    check_choice,
)
from lcgan_qgis.core.errors import DeviceError, OptionError
from lcgan_qgis.core.run.settings import DEFAULT_WINDOW_PX, Windowing
from lcgan_qgis.mosaic.request import Cluster


def test_every_choice_has_its_label() -> None:
    for choices, labels in ((DEVICES, DEVICE_LABELS), (BACKENDS, BACKEND_LABELS), (PRECISIONS, PRECISION_LABELS),
                            (RADIOMETRY_CHOICES, RADIOMETRY_LABELS)):
        assert list(labels) == list(choices)


def test_an_unknown_name_lists_the_choices() -> None:
    check_choice("backend", "openvino", BACKENDS)
    with pytest.raises(DeviceError, match="Unknown precision 'fp64'; choose one of: auto, fp32, bf16, int8."):
        check_choice("precision", "fp64", PRECISIONS)


def test_the_bounds_agree_with_the_records() -> None:
    assert MAX_OVERLAP_PX < DEFAULT_WINDOW_PX * 16 and Windowing(overlap_px=MAX_OVERLAP_PX).overlap_px == 4096
    Cluster(tile_px=MIN_TILE_PX)
    with pytest.raises(OptionError, match=f">= {MIN_TILE_PX} px"):
        Cluster(tile_px=MIN_TILE_PX - 1)
