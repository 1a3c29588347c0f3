"""Pure learning-rate schedule: constant, then linear decay to zero (the reference CycleGAN's, per step)."""

from __future__ import annotations


def lr_factor(step: int, decay_start_step: int, total_steps: int) -> float:
    """Multiplier of the base learning rate at ``step`` (0-based).

    1.0 until ``decay_start_step``, then falling linearly so that the last step (``total_steps - 1``) still trains
    with a small positive rate, like the reference ``1 - max(0, epoch - n_epochs) / (n_epochs_decay + 1)``.
    """
    if step < decay_start_step:
        return 1.0
    return max(0.0, 1.0 - (step - decay_start_step + 1) / (total_steps - decay_start_step + 1))
