"""A scenario's layers in QGIS: before, after and the change mask in one group named by the scenario, ready for a
swipe (the Map Swipe plugin swipes the top layer over the ones below) or a side-by-side view (View > New Map View,
one map showing "before", the other "after").

The group ("Scenario: <name>") sits in the ``lcgan`` group: the change mask on top (unchecked: 1 changed, 2
re-rendered margin), then "after" over "before". The imagery is styled 0-255 as every lcgan result; the provenance
(base, change, base render, model, seed, margin, hectares) goes into each layer's metadata and, for the files this
run wrote, into the QMD and QML beside them (a base render the user gave is not touched).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from qgis.core import QgsLayerTreeGroup, QgsPalettedRasterRenderer, QgsProject, QgsRasterLayer
from qgis.PyQt.QtGui import QColor

from ..core.errors import OutputError
from ..core.run.scenario_output import MASK_COLOURS, MASK_NAMES, read_tags
from .styling import result_group, set_provenance, style_rgb, write_sidecars

if TYPE_CHECKING:  # (the scenario module loads onnxruntime: imported when a scenario runs, not with the plugin)
    from ..core.run.scenario import ScenarioResult

GROUP_PREFIX = "Scenario: "


def _open(path: str, name: str) -> QgsRasterLayer:
    layer = QgsRasterLayer(path, name, "gdal")
    if not layer.isValid():
        raise OutputError(f"The scenario's file {path} cannot be opened as a raster layer.")
    return layer


def style_change_mask(layer: QgsRasterLayer) -> QgsPalettedRasterRenderer:
    """The change mask's classes: copied (transparent), changed (red), re-rendered margin (amber)."""
    classes = [QgsPalettedRasterRenderer.Class(value, QColor(*colour), MASK_NAMES[value])
               for value, colour in enumerate(MASK_COLOURS) if value]
    renderer = QgsPalettedRasterRenderer(layer.dataProvider(), 1, classes)
    layer.setRenderer(renderer)
    return renderer


def scenario_layers(result: ScenarioResult, name: str, write_beside: bool = True) -> list[QgsRasterLayer]:
    """The styled layers of ``result`` (mask, after, before), their provenance set; the QML and QMD saved beside
    the files the scenario wrote when ``write_beside``.

    Raises:
        OutputError: a file cannot be opened, or its sidecars cannot be written.
    """
    if result.output_path is None or result.change_mask_path is None or result.base_render_path is None:
        raise OutputError("The scenario was cancelled: there are no layers to add.")
    mask = _open(result.change_mask_path, f"{name}: change")
    after = _open(result.output_path, f"{name}: after")
    before = _open(result.base_render_path, f"{name}: before")
    style_change_mask(mask)
    style_rgb(after)
    style_rgb(before)
    for layer, path, own in ((mask, result.change_mask_path, True), (after, result.output_path, True),
                             (before, result.base_render_path, result.base_rendered)):
        tags = read_tags(path)
        if tags:
            set_provenance(layer, tags)
        if own and write_beside:
            write_sidecars(layer)
    return [mask, after, before]


def add_scenario_layers(result: ScenarioResult, name: str, project: QgsProject | None = None,
                        write_beside: bool = True) -> QgsLayerTreeGroup:
    """Put ``result``'s layers in the group ``"Scenario: <name>"`` of the ``lcgan`` group (replacing the layers of
    an earlier run of the same name); returns the group."""
    project = project or QgsProject.instance()
    layers = scenario_layers(result, name, write_beside)
    parent = result_group(project)
    title = f"{GROUP_PREFIX}{name}"
    old = parent.findGroup(title)
    if old is not None:
        project.removeMapLayers([node.layerId() for node in old.findLayers()])
        parent.removeChildNode(old)
    group = parent.insertGroup(0, title)
    for layer in layers:
        project.addMapLayer(layer, False)
        group.addLayer(layer)
    group.findLayer(layers[0].id()).setItemVisibilityChecked(False)  # (the mask would hide the imagery)
    return group


def result_from_files(output: str, mask: str, base_render: str, base_rendered: bool) -> ScenarioResult:
    """A :class:`ScenarioResult` naming existing files (Processing's outputs, which travel as paths)."""
    from ..core.run.scenario import ScenarioResult

    tags: Mapping[str, str] = read_tags(output)
    return ScenarioResult(output, mask, base_render, base_rendered, int(tags.get("LCGAN_SCENARIO_CHANGED_PX", 0)),
                          None, int(tags.get("LCGAN_SCENARIO_MARGIN_PX", 0)), False, 0, 0, 0, 0.0, None, dict(tags))

