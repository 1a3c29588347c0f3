"""``make bench``: speed, memory and seams of the translation engine, measured in ONE run -> docs/bench.json.

What it measures (docs/engine.md explains the choices):

* speed on a 4096 x 4096 8-bit RGB raster (Zion Landsat, 8-bit stretched and mirrored to size) with the full-size
  CycleGAN generator (3 -> 14, ngf 64, 9 blocks, random weights; cached under ~/.cache/lcgan/bench):
  - a Deepness-like baseline: plain fp32 onnxruntime over 256 px tiles at 15 % overlap, centre-crop stitching;
  - our default path end to end (``translate`` with default options; ``load_model``'s default precision), in a
    subprocess so its peak RSS is its own, then the pure onnxruntime time of exactly the windows it ran;
* a fp32 GEMM probe (onnxruntime MatMul, the same MLAS kernels as the convolutions) and the engine's achieved
  GFLOP/s as a fraction of it;
* peak RSS of the engine over 4096^2 and a larger raster (a VRT mosaic, default 8192^2 = 4x the pixels) with a
  per-pixel model: the engine's own buffers do not depend on the model (onnxruntime's arena for the real model is
  reported separately);
* seams on a real input (Zion NLCD -> imagery with the full-size 14 -> 3 generator): mean |difference| of
  neighbouring output pixels across tile-grid lines / away from them, naive independent tiles vs our blending;
* each low-precision path (int8 QDQ) against fp32 on the real Zion rasters: speed-up and fidelity (class agreement,
  PSNR), for the same windows and against fp32 at the model's own tile size.

The machine's load is recorded with every phase; compare ratios measured in this one run.

Modules: :mod:`.measures` (timing, memory, seam ratio, PSNR), :mod:`.inputs` (models and rasters, cached),
:mod:`.measurements` (one function per measurement), :mod:`.report` (the run and its JSON), ``__main__`` (the
command line).
"""
