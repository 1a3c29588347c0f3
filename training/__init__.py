"""lcgan training: the CycleGAN between land-cover maps and RGB imagery (PyTorch), exported to ONNX.

Modules: ``config`` (typed config, TOML + overrides), ``models`` (ResNet generator, PatchGAN), ``losses``, ``pool``
(replay buffer), ``schedule`` (lr), ``data`` and ``areas`` (unpaired GeoTIFF windows via rasterio, training areas),
``trainer`` (loop, checkpoints, resume, DDP), ``validate`` (RGB->LC accuracy during training), ``export`` (ONNX +
the model contract), ``metrics`` (confusion matrix, accuracy, IoU), ``plots``, ``ablation`` (the D_lc study) and
``evaluate`` (exported models on a paired area). Entry point: ``python -m training train|export|ablation|evaluate``
(see ``docs/training.md``).
"""
