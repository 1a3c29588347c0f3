"""Upper bounds of the training config's sizes and counts, and the device and seed forms (``TrainConfig.validate``
adds these checks): a typo like ``batch_size=1e20`` or ``threads=100000`` is refused naming the key and the bound,
instead of meeting it later as an allocation failure, thousands of threads or a torch traceback. The bounds are far
beyond any machine's useful values, and not this machine's: a checkpoint written on a large machine must load on a
small one."""

from __future__ import annotations

import re
from typing import Any

MAX_BATCH, MAX_CROP_PX, MAX_STEPS, MAX_THREADS, MAX_FILTERS, MAX_BLOCKS = 4096, 16384, 10**9, 1024, 4096, 256
DEVICE_FORM = r"auto|cpu|cuda(:\d{1,3})?"


def bound_checks(config: Any) -> list[tuple[bool, str, str]]:
    """``(ok, key, what it must be)`` rows in the form of ``TrainConfig.validate``'s checks."""
    m, d, o, r = config.model, config.data, config.optim, config.runtime
    return [
        (re.fullmatch(DEVICE_FORM, r.device) is not None, "runtime.device",
         f"auto, cpu, cuda or cuda:N, not {r.device!r}"),
        (0 <= r.seed < 2**32, "runtime.seed", f"in [0, 2^32), not {r.seed}"),
        (o.batch_size <= MAX_BATCH and d.crop_size_px <= MAX_CROP_PX, "optim.batch_size/data.crop_size_px",
         f"at most {MAX_BATCH} and {MAX_CROP_PX} (got {o.batch_size} and {d.crop_size_px})"),
        (o.steps_per_epoch * o.epochs <= MAX_STEPS, "optim.steps_per_epoch x optim.epochs",
         f"at most {MAX_STEPS:.0e} steps in all (got {o.steps_per_epoch * o.epochs:.3g})"),
        (r.threads <= MAX_THREADS and d.num_workers <= MAX_THREADS, "runtime.threads/data.num_workers",
         f"at most {MAX_THREADS} (got {r.threads} and {d.num_workers}; 0 = the default)"),
        (m.ngf <= MAX_FILTERS and m.ndf <= MAX_FILTERS and m.n_blocks <= MAX_BLOCKS, "model.ngf/ndf/n_blocks",
         f"at most {MAX_FILTERS} filters and {MAX_BLOCKS} blocks (got {m.ngf}, {m.ndf}, {m.n_blocks})"),
    ]
