"""Styles and placement of result layers: land cover with the scheme's codes, names and colours, RGB stretched
0-255, confidence as a grey ramp.

The legend of land cover lists "42 Evergreen Forest": by default only the classes present in the result, all of the
scheme's on request. Every result file gets a QML style and a QMD metadata file beside it (``lc.tif`` ->
``lc.qml``, ``lc.qmd``), which QGIS reads whenever it opens the file, so it opens styled, and marked as
AI-generated (model, version, input, date), in any project. Results go into one layer-tree group (``lcgan``) at the
top of the project, named after the input, the direction, the model and the seed ("Zion -> RGB (terrain, seed 0)").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from qgis.core import (
    QgsCategorizedSymbolRenderer,
    QgsContrastEnhancement,
    QgsFillSymbol,
    QgsLayerMetadata,
    QgsLayerTreeGroup,
    QgsMultiBandColorRenderer,
    QgsPalettedRasterRenderer,
    QgsProject,
    QgsRasterLayer,
    QgsRendererCategory,
    QgsSingleBandGrayRenderer,
    QgsVectorLayer,
)
from qgis.PyQt.QtGui import QColor

from ..core.errors import OutputError
from ..core.model.contract import Direction
from ..core.model.scheme import ClassScheme, LandCoverClass
from ..core.rasters.provenance import CREATED, KIND, MODEL, summary
from ..core.storage.files import AtomicFile

GROUP_NAME = "lcgan"
RESULT_SUFFIX = {
    Direction.LANDCOVER_TO_RGB: "RGB",
    Direction.RGB_TO_LANDCOVER: "land cover",
}


def result_layer_name(input_name: str, direction: Direction, model_path: str | None = None,
                      seed: int | None = None) -> str:
    """``"nlcd2011 -> RGB (terrain, seed 0)"`` or ``"landsat8_rgb -> land cover (bundled model)"``: the input, what
    was made, the model (:func:`~lcgan_qgis.plugin.models.model_short_name`) and, for imagery, the seed, so runs
    can be told apart in the Layers panel and in Processing's pickers."""
    from .models import model_short_name

    details = [model_short_name(model_path, direction)]
    if direction is Direction.LANDCOVER_TO_RGB and seed is not None:
        details.append(f"seed {seed}")
    return f"{input_name} -> {RESULT_SUFFIX[direction]} ({', '.join(details)})"


def class_label(cls: LandCoverClass) -> str:
    """The legend entry of a class: its code and its name (``"42 Evergreen Forest"``)."""
    return f"{cls.code} {cls.name}"


def legend_classes(scheme: ClassScheme, present: Iterable[int] | None = None) -> list[LandCoverClass]:
    """The classes a legend lists: those whose code is in ``present`` (``None``: all of the scheme's)."""
    if present is None:
        return list(scheme.classes)
    codes = set(present)
    return [c for c in scheme.classes if c.code in codes]


def style_landcover(layer: QgsRasterLayer, scheme: ClassScheme, band: int = 1,
                    present: Iterable[int] | None = None) -> QgsPalettedRasterRenderer:
    """Give ``layer`` a paletted renderer with the scheme's colours and "code name" labels, for the classes in
    ``present`` (``None``: every class of the scheme)."""
    classes = [QgsPalettedRasterRenderer.Class(c.code, QColor(*c.rgba), class_label(c))
               for c in legend_classes(scheme, present)]
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


def style_result(layer: QgsRasterLayer, direction: Direction, scheme: ClassScheme | None,
                 present: Iterable[int] | None = None) -> None:
    """Style a result layer for its direction (land cover needs ``scheme``; ``present``: the codes its legend
    lists, ``None`` for all)."""
    if direction is Direction.RGB_TO_LANDCOVER:
        if scheme is None:
            raise OutputError(f"Layer '{layer.name()}': a land-cover result needs the model's class scheme.")
        style_landcover(layer, scheme, present=present)
    else:
        style_rgb(layer)


def set_provenance(layer: QgsRasterLayer, tags: Mapping[str, str]) -> QgsLayerMetadata:
    """Write the provenance tags into ``layer``'s QGIS metadata: title, abstract, keywords, history."""
    metadata = QgsLayerMetadata(layer.metadata())
    metadata.setTitle(f"{layer.name()} (AI-generated {tags.get(KIND, 'output')})")
    metadata.setAbstract(summary(tags))
    metadata.setType("dataset")
    metadata.addKeywords("lcgan", ["AI-generated", tags.get(KIND, ""), tags.get(MODEL, "")])
    metadata.setHistory([f"{tags.get(CREATED, '')}: {summary(tags)}"] + [f"{k}={v}" for k, v in tags.items()
                                                                      if k.startswith("LCGAN_")])
    layer.setMetadata(metadata)
    return metadata


def write_sidecars(layer: QgsRasterLayer) -> tuple[Path, Path]:
    """Save ``layer``'s style and metadata beside its file (``<name>.qml``, ``<name>.qmd``), each whole or not at
    all; QGIS applies them whenever it opens the file.

    Raises:
        OutputError: a file cannot be written (named, with QGIS's reason).
    """
    source = Path(layer.source().split("|")[0])
    written = []
    for suffix, save in ((".qml", layer.saveNamedStyle), (".qmd", layer.saveNamedMetadata)):
        target = source.with_suffix(suffix)
        with AtomicFile(target) as tmp:
            message, ok = save(str(tmp))
            if not ok or not tmp.is_file():
                raise OutputError(f"Cannot write {target}: {message or 'QGIS could not save it'}.")
        written.append(target)
    return written[0], written[1]


def style_file(path: str, name: str, direction: Direction | None, scheme: ClassScheme | None,
               tags: Mapping[str, str], present: Iterable[int] | None = None) -> QgsRasterLayer:
    """Open the result ``path`` as a layer called ``name``, style it (``direction`` ``None``: a confidence raster),
    write its provenance and save its style and metadata beside it; returns the layer (not in a project).

    Raises:
        OutputError: the file cannot be opened, or its sidecars cannot be written.
    """
    layer = QgsRasterLayer(path, name, "gdal")
    if not layer.isValid():
        raise OutputError(f"The result {path} cannot be opened as a raster layer.")
    if direction is None:
        style_confidence(layer)
    else:
        style_result(layer, direction, scheme, present)
    set_provenance(layer, tags)
    write_sidecars(layer)
    return layer


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


def add_result_layer(path: str, name: str, direction: Direction | None, scheme: ClassScheme | None,
                     tags: Mapping[str, str], present: Iterable[int] | None = None,
                     project: QgsProject | None = None) -> QgsRasterLayer:
    """Open the result GeoTIFF ``path`` as a styled layer called ``name`` (``direction`` ``None``: a confidence
    raster), save its style and metadata beside it, and put it in the ``lcgan`` group of ``project``.

    Raises:
        OutputError: the file cannot be opened as a raster layer, or its sidecars cannot be written.
    """
    layer = style_file(path, name, direction, scheme, tags, present)
    place_in_group(layer, project or QgsProject.instance())
    return layer


def add_polygon_layer(path: str, name: str, scheme: ClassScheme, project: QgsProject | None = None) -> QgsVectorLayer:
    """Open the land-cover polygons ``path`` as a layer filled with the scheme's colours by ``code``, in the
    ``lcgan`` group of ``project``.

    Raises:
        OutputError: the file cannot be opened as a vector layer.
    """
    layer = QgsVectorLayer(path, name, "ogr")
    if not layer.isValid():
        raise OutputError(f"The polygons {path} cannot be opened as a vector layer.")
    categories = []
    for cls in scheme.classes:
        symbol = QgsFillSymbol.createSimple({"color": ",".join(map(str, cls.rgba)), "outline_style": "no"})
        categories.append(QgsRendererCategory(cls.code, symbol, class_label(cls)))
    layer.setRenderer(QgsCategorizedSymbolRenderer("code", categories))
    place_in_group(layer, project or QgsProject.instance())
    return layer
