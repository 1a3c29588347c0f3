"""The QGIS adapters: the only part of lcgan that imports ``qgis``.

The plugin object (:mod:`.lcgan_plugin`), the Processing provider and algorithms (:mod:`.processing_provider`), the
dock panel (:mod:`.gui`), the background task (:mod:`.tasks`), the reader over QGIS data providers
(:mod:`.qgis_reader`), result styling (:mod:`.styling`) and the icon (:mod:`.icons`). Everything they share with the
command line and the benchmarks lives in the QGIS-free :mod:`lcgan_qgis.core`.
"""
