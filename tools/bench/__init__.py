"""``make bench``: speed, memory and seams of the translation engine, measured in ONE run -> docs/bench.json.

What it measures (docs/engine.md explains the choices):

* speed on a 4096 x 4096 8-bit RGB raster (Zion Landsat, 8-bit stretched and mirrored to size) with the full-size
  CycleGAN generator (3 -> 14, ngf 64, 9 blocks, random weights; cached under ~/.cache/lcgan/bench):
  - a Deepness-like baseline: plain fp32 onnxruntime over 256 px tiles at 15 % overlap, centre-crop stitching;
  - our default path end to end (``translate`` with default options, on the backend and precision ``auto`` picks
    for the bundled RGB -> land-cover model: the random weights fail every reduced-precision gate), in a
    subprocess so its peak RSS is its own, then the pure inference time of exactly the windows it ran;
  - OpenVINO's compile time for that window, with an empty and with a filled model cache;
* a fp32 GEMM probe (onnxruntime MatMul, the same MLAS kernels as the convolutions) and the engine's achieved
  GFLOP/s as a fraction of it;
* peak RSS of the engine over 4096^2 and a larger raster (a VRT mosaic, default 8192^2 = 4x the pixels) with a
  per-pixel model: the engine's own buffers do not depend on the model (onnxruntime's arena for the real model is
  reported separately);
* seams on a real input (Zion NLCD -> imagery with the full-size 14 -> 3 generator): mean |difference| of
  neighbouring output pixels across tile-grid lines / away from them, naive independent tiles vs our blending;
* one row per backend x precision (onnxruntime/OpenVINO x fp32/bf16/int8, what this machine offers) on the real
  Zion rasters, for the full-size generator and each bundled model: Mpx/s end to end, pure inference, overhead
  ratio, fidelity (class agreement, PSNR) against onnxruntime fp32 at the same windows (and, for the bundled
  models, fp32 at the model's own tile size); the fidelity gates ``auto`` reads are measured on the calibration
  windows into each model's ``M.fidelity.json`` (``lcgan_qgis.tooling.gates``).

The machine's load is recorded with every phase; compare ratios measured in this one run.

Modules: :mod:`.measures` (timing, memory, seam ratio, PSNR), :mod:`.inputs` (models and rasters, cached),
:mod:`.measurements` (one function per measurement), :mod:`.report` (the run and its JSON), ``__main__`` (the
command line).
"""
