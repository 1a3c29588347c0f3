"""The plugin's package installer, QGIS-free so it can be tested from any Python.

- :mod:`.folders`: where installed packages live (a per-profile ``lcgan`` folder, outside the plugin folder, so
  reinstalling or upgrading the plugin keeps them) and how they join ``sys.path``;
- :mod:`.interpreter`: which Python runs pip (QGIS's own, found the way its Python console would);
- :mod:`.plan`: the pinned requirements, their download sizes, the CPU or GPU wheel, and the pip command;
- :mod:`.companions`: what fine-tuning imports beside PyTorch (onnx, rasterio...), which of it QGIS's Python
  lacks, and the folders the fine-tuning child puts on its path;
- :mod:`.status`: whether onnxruntime (or the optional OpenVINO) imports, and making a fresh install usable in the
  running QGIS.

The dialog in :mod:`lcgan_qgis.plugin.gui.deps_dialog` drives it.
"""
