"""The replay buffer ("image pool") of the reference CycleGAN (Shrivastava et al. 2017; Zhu et al. 2017).

Until it holds ``size`` images every query returns the new images and stores them. Once full, each new image is,
with probability 0.5, swapped for a random stored one (the stored one is returned, the new one kept) or returned
as it is. The discriminator thus also sees older fakes, which damps oscillation. The pool stores exactly what the
discriminator sees (detached), e.g. the Gumbel one-hot map rather than the logits.
"""

from __future__ import annotations

from typing import Any

import torch


class ImagePool:
    """Replay buffer of ``size`` images (0 disables it: queries return their input)."""

    def __init__(self, size: int = 50, seed: int = 0) -> None:
        if size < 0:
            raise ValueError(f"pool size must be >= 0, got {size}.")
        self.size = size
        self.images: list[torch.Tensor] = []
        self.generator = torch.Generator().manual_seed(seed)

    def query(self, images: torch.Tensor) -> torch.Tensor:
        """Return a batch of the same shape: each image is the new one or, once full, half the time an old one."""
        images = images.detach()
        if self.size == 0:
            return images
        out = []
        for image in images:
            image = image.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif torch.rand(1, generator=self.generator).item() < 0.5:
                index = int(torch.randint(0, self.size, (1,), generator=self.generator).item())
                out.append(self.images[index].clone())
                self.images[index] = image.clone()
            else:
                out.append(image)
        return torch.cat(out, 0)

    def state_dict(self) -> dict[str, Any]:
        """Stored images (on CPU) and the generator state, for checkpoints."""
        stacked = torch.cat(self.images, 0).cpu() if self.images else torch.empty(0)
        return {"size": self.size, "images": stacked, "rng": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any], device: torch.device | str = "cpu") -> None:
        self.size = int(state["size"])
        images = state["images"]
        self.images = [images[i : i + 1].to(device) for i in range(images.shape[0])] if images.numel() else []
        self.generator.set_state(state["rng"])
