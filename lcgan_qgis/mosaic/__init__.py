"""Scale out: translate a raster of any size (a country's land cover) on a Dask cluster, pixel for pixel as the
single-process engine would, into a folder of Cloud Optimized GeoTIFFs and a VRT.

* :mod:`.grid`: super-tiles on the one window grid of the whole raster (pure);
* :mod:`.manifest`: the journal of finished tiles and their checksums (resume);
* :mod:`.inputs`: one raster, or several / a folder mosaicked into a VRT;
* :mod:`.folder`: the output folder (its layout, no file an input reads overwritten, the styled and tagged VRT);
* :mod:`.tile`: what a worker runs for one super-tile (one model per worker process; the DEM; atomic COG);
* :mod:`.cluster`: Dask, imported lazily (the plugin does not need it), a local or existing cluster;
* :mod:`.job`: :func:`run_mosaic`, the client side (``python -m lcgan_qgis translate-mosaic`` and the
  ``lcgan:translate_mosaic`` Processing algorithm): the single-process job's rules
  (:func:`lcgan_qgis.core.run.job.plan_job`), then one engine run per super-tile.

Nothing here imports Dask at import time; :func:`~lcgan_qgis.mosaic.cluster.import_distributed` says how to install
it. See docs/mosaic.md.
"""
