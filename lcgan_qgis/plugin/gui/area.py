"""Areas of interest for the dock: the map canvas extent or a polygon layer's features, as WKT in the raster CRS."""

from __future__ import annotations

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsFeatureRequest,
    QgsGeometry,
    QgsProject,
    QgsRasterLayer,
    QgsRectangle,
    QgsVectorLayer,
)

from ...core.errors import InputRasterError


def _transform(source: QgsCoordinateReferenceSystem, layer: QgsRasterLayer) -> QgsCoordinateTransform:
    return QgsCoordinateTransform(source, layer.crs(), QgsProject.instance())


def _checked(geometry: QgsGeometry, layer: QgsRasterLayer, what: str) -> str:
    if geometry.isEmpty():
        raise InputRasterError(f"The {what} is empty; nothing to translate in layer '{layer.name()}'.")
    if not geometry.intersects(QgsGeometry.fromRect(layer.extent())):
        raise InputRasterError(f"The {what} does not overlap layer '{layer.name()}'.")
    return geometry.asWkt()


def extent_wkt(extent: QgsRectangle, extent_crs: QgsCoordinateReferenceSystem, layer: QgsRasterLayer) -> str:
    """A map extent (e.g. the canvas's, in ``extent_crs``) as a polygon in ``layer``'s CRS."""
    rect = _transform(extent_crs, layer).transformBoundingBox(extent)
    return _checked(QgsGeometry.fromRect(rect), layer, "map canvas extent")


def features_wkt(polygons: QgsVectorLayer, layer: QgsRasterLayer, selected_only: bool) -> str:
    """The union of ``polygons``' features (or its selected ones) as a (multi)polygon in ``layer``'s CRS."""
    if polygons is None or not polygons.isValid():
        raise InputRasterError("Choose a polygon layer for the area to translate.")
    transform = _transform(polygons.crs(), layer)
    if selected_only:
        features = polygons.getSelectedFeatures()
    else:
        features = polygons.getFeatures(QgsFeatureRequest().setNoAttributes())
    parts = []
    for feature in features:
        geometry = QgsGeometry(feature.geometry())
        if geometry.isNull() or geometry.isEmpty():
            continue
        geometry.transform(transform)
        parts.append(geometry)
    what = f"{'selection of ' if selected_only else ''}polygon layer '{polygons.name()}'"
    if not parts:
        raise InputRasterError(f"The {what} has no features to use as the area to translate.")
    return _checked(QgsGeometry.unaryUnion(parts), layer, what)
