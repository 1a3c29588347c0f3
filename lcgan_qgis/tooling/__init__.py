"""Model tooling that needs packages the plugin's runtime does not ship (``onnx``): int8 quantization.

QGIS-free; imported only by the command line's ``quantize`` command and the benchmarks, never by
:mod:`lcgan_qgis.core` or :mod:`lcgan_qgis.plugin`.
"""
