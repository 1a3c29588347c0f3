"""Terrain channels from an elevation raster (hillshade, slope, relative elevation)."""
