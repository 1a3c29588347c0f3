"""Model tooling that needs packages the plugin's runtime does not ship (``onnx``): int8 quantization, fidelity
gates, float16 weight storage.

QGIS-free; imported only by the command line's ``quantize``, ``gates`` and ``weights`` commands, the training
package's export and the benchmarks, never by :mod:`lcgan_qgis.core` or :mod:`lcgan_qgis.plugin`.
"""
