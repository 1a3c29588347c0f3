"""How every GeoTIFF lcgan writes is laid out: one block size and one set of creation options (the engine's
outputs, resampled results, polygonizing scratch files, the benchmark's and the demo's inputs)."""

from __future__ import annotations

#: Block side of every GeoTIFF lcgan writes (px): the engine writes whole block rows, QGIS reads tiles, and overviews
#: are built until the smallest level fits in one block (``gdaladdo``'s rule).
BLOCK_PX = 256

#: GDAL GTiff creation options: :data:`BLOCK_PX` tiles, lossless DEFLATE, BigTIFF only when the file may pass 4 GB,
#: and blocks holding only nodata left out of the file (``SPARSE_OK``: a raster with little data writes and reads
#: little).
GEOTIFF_CREATION_OPTIONS = ("TILED=YES", f"BLOCKXSIZE={BLOCK_PX}", f"BLOCKYSIZE={BLOCK_PX}", "COMPRESS=DEFLATE",
                            "BIGTIFF=IF_SAFER", "SPARSE_OK=TRUE")
