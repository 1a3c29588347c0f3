"""Raster reading and writing: GDAL I/O, validity, resampling, AOI, outputs, polygons, provenance."""
