"""Styles a Processing result when QGIS loads it: paletted land cover (codes and names), 0-255 RGB or a confidence
ramp, with its provenance in the layer metadata, in the ``lcgan`` group."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

from qgis.core import (
    QgsMapLayer,
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProcessingLayerPostProcessorInterface,
)

from ...core.model.contract import Direction
from ...core.model.scheme import ClassScheme
from ..styling import place_in_group, set_provenance, style_confidence, style_result


class ResultStyler(QgsProcessingLayerPostProcessorInterface):
    """Applies the result style. QGIS does not own post-processors and may call one after the algorithm object is
    gone, so every instance is kept for the session (a few bytes each)."""

    _pending: ClassVar[list[ResultStyler]] = []

    def __init__(self, direction: Direction | None, scheme: ClassScheme, tags: Mapping[str, str],
                 present: Sequence[int] | None) -> None:
        super().__init__()
        self.direction = direction  # None: a confidence raster
        self.scheme = scheme
        self.tags = dict(tags)
        self.present = present

    @classmethod
    def create(cls, direction: Direction | None, scheme: ClassScheme, tags: Mapping[str, str],
               present: Sequence[int] | None = None) -> ResultStyler:
        styler = cls(direction, scheme, tags, present)
        cls._pending.append(styler)
        return styler

    def postProcessLayer(self, layer: QgsMapLayer, context: QgsProcessingContext,
                         feedback: QgsProcessingFeedback) -> None:
        if self.direction is None:
            style_confidence(layer)
        else:
            style_result(layer, self.direction, self.scheme, self.present)
        set_provenance(layer, self.tags)
        place_in_group(layer, context.project())
