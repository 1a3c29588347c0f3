"""Styles a Processing result when QGIS loads it: paletted land cover or 0-255 RGB, in the ``lcgan`` group."""

from __future__ import annotations

from typing import ClassVar

from qgis.core import (
    QgsMapLayer,
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProcessingLayerPostProcessorInterface,
)

from ...core.contract import Direction
from ...core.scheme import ClassScheme
from ..styling import place_in_group, result_layer_name, style_result


class ResultStyler(QgsProcessingLayerPostProcessorInterface):
    """Applies the result style. QGIS does not own post-processors and may call one after the algorithm object is
    gone, so every instance is kept for the session (a few bytes each)."""

    _pending: ClassVar[list[ResultStyler]] = []

    def __init__(self, direction: Direction, scheme: ClassScheme) -> None:
        super().__init__()
        self.direction = direction
        self.scheme = scheme

    @classmethod
    def create(cls, direction: Direction, scheme: ClassScheme) -> ResultStyler:
        styler = cls(direction, scheme)
        cls._pending.append(styler)
        return styler

    @staticmethod
    def layer_name(input_name: str, direction: Direction) -> str:
        return result_layer_name(input_name, direction)

    def postProcessLayer(self, layer: QgsMapLayer, context: QgsProcessingContext,
                         feedback: QgsProcessingFeedback) -> None:
        style_result(layer, self.direction, self.scheme)
        place_in_group(layer, context.project())
