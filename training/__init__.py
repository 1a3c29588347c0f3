"""lcgan training: the CycleGAN between land-cover maps and RGB imagery (PyTorch), exported to ONNX.

Modules: ``config`` (typed config, TOML + overrides), ``models`` (ResNet generator, PatchGAN), ``losses``, ``pool``
(replay buffer), ``data`` (unpaired GeoTIFF windows via rasterio), ``trainer`` (loop, checkpoints, DDP), ``export``
(ONNX + the model contract), ``metrics`` (confusion matrix, accuracy, IoU), ``plots``. Entry point:
``python -m training train|export|...`` (see ``docs/training.md``).
"""
