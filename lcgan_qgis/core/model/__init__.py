"""Model contract, class schemes and the runtimes that execute an lcgan ONNX model."""
