"""Styles and placement of result layers: land cover with the scheme's names and colours, RGB stretched 0-255.

Results go into one layer-tree group (``lcgan``) at the top of the project and are named after the input and the
direction ("Zion -> land cover"), so the legend reads "Evergreen Forest", not "42".
"""

from __future__ import annotations

from qgis.core import (
    QgsContrastEnhancement,
    QgsLayerTreeGroup,
    QgsMultiBandColorRenderer,
    QgsPalettedRasterRenderer,
    QgsProject,
    QgsRasterLayer,
    QgsSingleBandGrayRenderer,
)
from qgis.PyQt.QtGui import QColor

from ..core.contract import Direction
from ..core.errors import OutputError
from ..core.scheme import ClassScheme

GROUP_NAME = "lcgan"
RESULT_SUFFIX = {
    Direction.LANDCOVER_TO_RGB: "synthetic RGB",
    Direction.RGB_TO_LANDCOVER: "land cover",
}


def result_layer_name(input_name: str, direction: Direction) -> str:
    """``"<input> -> synthetic RGB"`` or ``"<input> -> land cover"``."""
    return f"{input_name} -> {RESULT_SUFFIX[direction]}"


def style_landcover(layer: QgsRasterLayer, scheme: ClassScheme, band: int = 1) -> QgsPalettedRasterRenderer:
    """Give ``layer`` a paletted renderer with one entry per class of ``scheme`` (code, colour, name)."""
    classes = [
        QgsPalettedRasterRenderer.Class(c.code, QColor(*c.rgba), c.name) for c in scheme.classes
    ]
    renderer = QgsPalettedRasterRenderer(layer.dataProvider(), band, classes)
    layer.setRenderer(renderer)
    layer.triggerRepaint()
    return renderer


def style_rgb(layer: QgsRasterLayer) -> QgsMultiBandColorRenderer:
    """Give a 3-band uint8 ``layer`` a red/green/blue renderer with a fixed 0-255 stretch (the model's colours)."""
    renderer = QgsMultiBandColorRenderer(layer.dataProvider(), 1, 2, 3)
    for band, setter in ((1, renderer.setRedContrastEnhancement), (2, renderer.setGreenContrastEnhancement),
                         (3, renderer.setBlueContrastEnhancement)):
        enhancement = QgsContrastEnhancement(layer.dataProvider().dataType(band))
        enhancement.setMinimumValue(0)
        enhancement.setMaximumValue(255)
        enhancement.setContrastEnhancementAlgorithm(QgsContrastEnhancement.ContrastEnhancementAlgorithm.StretchToMinimumMaximum)
        setter(enhancement)
    layer.setRenderer(renderer)
    layer.triggerRepaint()
    return renderer


def style_confidence(layer: QgsRasterLayer) -> QgsSingleBandGrayRenderer:
    """Grey ramp over the full probability range 0 (black) to 1 (white)."""
    renderer = QgsSingleBandGrayRenderer(layer.dataProvider(), 1)
    enhancement = QgsContrastEnhancement(layer.dataProvider().dataType(1))
    enhancement.setMinimumValue(0.0)
    enhancement.setMaximumValue(1.0)
    enhancement.setContrastEnhancementAlgorithm(QgsContrastEnhancement.ContrastEnhancementAlgorithm.StretchToMinimumMaximum)
    renderer.setContrastEnhancement(enhancement)
    layer.setRenderer(renderer)
    layer.triggerRepaint()
    return renderer


def style_result(layer: QgsRasterLayer, direction: Direction, scheme: ClassScheme | None) -> None:
    """Style a result layer for its direction (land cover needs ``scheme``)."""
    if direction is Direction.RGB_TO_LANDCOVER:
        if scheme is None:
            raise OutputError(f"Layer '{layer.name()}': a land-cover result needs the model's class scheme.")
        style_landcover(layer, scheme)
    else:
        style_rgb(layer)


def result_group(project: QgsProject) -> QgsLayerTreeGroup:
    """The ``lcgan`` group of ``project``'s layer tree, created at the top when absent."""
    root = project.layerTreeRoot()
    group = root.findGroup(GROUP_NAME)
    return group if group is not None else root.insertGroup(0, GROUP_NAME)


def place_in_group(layer: QgsRasterLayer, project: QgsProject) -> None:
    """Add ``layer`` to ``project`` (if needed) and move it to the top of the ``lcgan`` group."""
    group = result_group(project)
    root = project.layerTreeRoot()
    if project.mapLayer(layer.id()) is None:
        project.addMapLayer(layer, False)
        group.insertLayer(0, layer)
        return
    node = root.findLayer(layer.id())
    if node is not None and node.parent() is not group:
        clone = node.clone()
        group.insertChildNode(0, clone)
        node.parent().removeChildNode(node)


def add_result_layer(path: str, name: str, direction: Direction, scheme: ClassScheme | None,
                     project: QgsProject | None = None) -> QgsRasterLayer:
    """Open the result GeoTIFF ``path`` as a styled layer called ``name`` in the ``lcgan`` group of ``project``.

    Raises:
        OutputError: the file cannot be opened as a raster layer.
    """
    project = project or QgsProject.instance()
    layer = QgsRasterLayer(path, name, "gdal")
    if not layer.isValid():
        raise OutputError(f"The result {path} cannot be opened as a raster layer.")
    style_result(layer, direction, scheme)
    place_in_group(layer, project)
    return layer


def add_confidence_layer(path: str, name: str, project: QgsProject | None = None) -> QgsRasterLayer:
    """Open a confidence GeoTIFF (max class probability) as a 0-1 grey layer in the ``lcgan`` group."""
    project = project or QgsProject.instance()
    layer = QgsRasterLayer(path, name, "gdal")
    if not layer.isValid():
        raise OutputError(f"The confidence raster {path} cannot be opened as a raster layer.")
    style_confidence(layer)
    place_in_group(layer, project)
    return layer
