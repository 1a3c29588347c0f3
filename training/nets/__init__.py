"""Generators and discriminators made for label maps (the second generation; the ResNet/PatchGAN pair of the seed
stays in :mod:`training.models`, which builds every network by name).

* :mod:`.layers`: fixed anti-aliasing filters (blurred x2 upsampling, blur before a strided convolution) and
  per-layer noise taken from the generator's own input noise channels.
* :mod:`.spade`: the SPADE generator (Park et al. 2019) for land cover (+ terrain) -> imagery.
* :mod:`.unet`: the ResNet generator with encoder -> decoder skip connections, for imagery -> land cover.
* :mod:`.discriminators`: multi-scale PatchGAN discriminators (pix2pixHD, Wang et al. 2018) that return their
  features for the feature-matching loss and may see the map beside the image.

Every network here is a pure convolutional function at inference (BatchNorm with running statistics, no
per-window statistics), so the engine's tiled output equals the untiled one away from the borders.
"""
