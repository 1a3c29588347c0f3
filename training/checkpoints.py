"""Checkpoints: atomic save, safe load (tensors and plain values only), provenance and the resume check.

A checkpoint describes itself (config, step, radiometry, scheme, git commit) and holds unwrapped, uncompiled state
dicts, so export and resume rebuild the networks from it alone. It is written to a temporary file and moved into
place with ``os.replace``: a crash never leaves a half-written ``last.pt``.
"""

from __future__ import annotations

import logging
import os
import pickle
import re
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

import torch

from lcgan_qgis.core.errors import OutputError
from lcgan_qgis.core.storage.files import PARTIAL_MARK, AtomicFile

from .config import TrainConfig
from .errors import TrainingError

log = logging.getLogger(__name__)

#: Signals that stop a run after its step with a checkpoint (the trainer's handlers): Ctrl-C, kill, hang-up.
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))

CHECKPOINT_FORMAT = "lcgan-train-1"
#: What every lcgan checkpoint holds, with the types export and resume rely on (checked on load: a foreign file
#: gets one line, never a KeyError or TypeError later).
REQUIRED_KEYS: dict[str, type | tuple[type, ...]] = {"step": int, "config": dict, "nets": dict, "scheme": dict,
                                                      "radiometry": dict}
#: Config sections that define what is trained: a resume must match them ([optim] may change, e.g. to extend the
#: schedule, and [runtime] is how, not what).
RESULT_SECTIONS = ("model", "loss", "data")
#: Keys of those sections that do not change the result (how fast data is loaded, where validation looks).
RESULT_NEUTRAL_KEYS = {"data": ("num_workers",)}


def git_commit() -> str:
    """The repository's HEAD commit (with ``-dirty`` when training/ has local changes), or ``unknown``."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", "training"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        return head + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def save_atomic(obj: Any, path: Path) -> None:
    """``torch.save`` through the core's :class:`~lcgan_qgis.core.storage.files.AtomicFile` (never a half-written file).

    The temporary file is opened and closed here, so a failed write releases its space at once (a file torch opens
    itself stays open as long as the error's traceback lives: an unlinked file that still fills the disk).

    Raises:
        TrainingError: the checkpoint folder cannot be written (disk full, file too large, permissions), in one line
            naming it; the previous checkpoint stays as it was.
    """
    try:
        with AtomicFile(path) as tmp, open(tmp, "wb") as f:
            torch.save(obj, f)
    except (OutputError, OSError, RuntimeError) as exc:  # (torch reports a failed write as RuntimeError)
        raise TrainingError(f"Cannot write checkpoint {path}: {write_failure(exc, path.parent)}. The previous "
                            "checkpoint is unchanged; free some space and run the same command to resume.") from None


def write_failure(exc: BaseException, folder: Path) -> str:
    """Why a write into ``folder`` failed, in words, with the free space there: the system's reason from the first
    ``OSError`` with one in ``exc``'s chain (torch wraps what its file raised in a RuntimeError, the core's
    OutputError wraps the OSError), else ``exc``'s first line."""
    cause: BaseException | None = exc
    while cause is not None and not (isinstance(cause, OSError) and cause.strerror):
        cause = cause.__cause__ or cause.__context__
    why = cause.strerror if isinstance(cause, OSError) else (str(exc).strip() or type(exc).__name__).splitlines()[0]
    try:
        free = f"{shutil.disk_usage(folder).free / 1e6:,.0f} MB free in {folder}"
    except OSError:
        free = f"free space in {folder} unknown"
    return f"{str(why).rstrip('.')} ({free})"


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True`` (tensors, numbers, strings, dicts and lists only).

    Raises:
        TrainingError: missing, empty, corrupt or truncated file, or one that asks to build other Python objects
            (which could run code on load): refused, with what to do.
    """
    fix = "Delete it to start the run over, or restore a copy."
    if Path(path).is_file() and Path(path).stat().st_size == 0:
        raise TrainingError(f"Checkpoint {path} is empty (0 bytes: an interrupted copy?). {fix}")
    if Path(path).is_dir():
        raise TrainingError(f"Checkpoint {path} is a folder; give the .pt file (e.g. RUN/checkpoints/last.pt).")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise TrainingError(f"Checkpoint not found: {path}") from None
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL (\S+)", str(exc))
        if found:
            raise TrainingError(
                f"Checkpoint {path} was refused: it asks to load {found.group(1)}, which is not a tensor or a plain "
                "value and could run code when loaded. lcgan checkpoints hold only tensors and plain values; delete "
                "this file or use a checkpoint you trust (never load it with weights_only=False)."
            ) from None
        raise TrainingError(f"Cannot read checkpoint {path}: it is not a PyTorch checkpoint (corrupt, truncated or "
                            f"another format). {fix}") from None
    except Exception as exc:  # (a corrupt file fails anywhere in the unpickler: IndexError, KeyError...)
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TrainingError(f"Cannot read checkpoint {path}: {detail} {fix}") from None
    missing = [k for k in REQUIRED_KEYS if not isinstance(state, dict) or k not in state]
    if missing:
        raise TrainingError(f"Checkpoint {path} is not an lcgan training checkpoint (it lacks {missing}). {fix}")
    wrong = [f"{key} is {type(state[key]).__name__} {_short(state[key])}" for key, kinds in REQUIRED_KEYS.items()
             if not isinstance(state[key], kinds) or isinstance(state[key], bool)]
    if not wrong and state["step"] < 0:
        wrong.append(f"step is {state['step']}")
    if not wrong and not all(isinstance(v, dict) for v in state["nets"].values()):
        wrong.append("nets holds something other than state dicts")
    if wrong:
        raise TrainingError(f"Checkpoint {path} is not an lcgan training checkpoint ({'; '.join(wrong)}). {fix}")
    return state


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def recover_interrupted(checkpoint: Path) -> Path | None:
    """Put a whole checkpoint that a killed run wrote but did not move into place (killed between the write and the
    rename) at ``checkpoint``, when it is newer than what is there.

    The candidates are the temporary files of ``checkpoint`` that a dead run's ledger claims (the core's
    :mod:`~lcgan_qgis.core.storage.ownership`: proof they are lcgan's) and a legacy ``last.pt.tmp``. Each is verified
    first: it must load as an lcgan checkpoint (a torn file does not: PyTorch's zip format ends with its directory),
    and its step must be past the current checkpoint's. Returns the file recovered, or None.
    """
    from lcgan_qgis.core.storage.ownership import abandoned_claims

    prefix, suffix = f".{checkpoint.stem}.", f"{PARTIAL_MARK}{checkpoint.suffix}"
    candidates = [p for p in abandoned_claims(checkpoint.parent) if p.name.startswith(prefix)
                  and p.name.endswith(suffix)]
    legacy = checkpoint.with_name(checkpoint.name + ".tmp")
    if legacy.is_file() and not legacy.is_symlink():
        candidates.append(legacy)
    current = -1
    if checkpoint.is_file():
        try:
            current = int(load_checkpoint(checkpoint)["step"])
        except TrainingError:
            current = -1
    best: tuple[int, Path] | None = None
    for candidate in candidates:
        try:
            step = int(load_checkpoint(candidate)["step"])
        except TrainingError as exc:
            log.info("not recovering %s: %s", candidate, exc)
            continue
        if step > current and (best is None or step > best[0]):
            best = (step, candidate)
    if best is None:
        return None
    os.replace(best[1], checkpoint)
    log.warning("recovered the checkpoint of step %d that an interrupted run wrote (%s) as %s", best[0],
                best[1].name, checkpoint)
    return best[1]


def check_resume_config(state: dict[str, Any], config: TrainConfig, path: Path) -> None:
    """Refuse to resume ``state`` under a ``config`` that would train something else (names the keys that differ).

    Raises:
        TrainingError: a result-changing key differs; the message lists checkpoint -> now values.
    """
    saved = TrainConfig.from_dict(state["config"], source=str(path))
    mine, theirs = config.to_dict(), saved.to_dict()
    for section in RESULT_SECTIONS:
        neutral = RESULT_NEUTRAL_KEYS.get(section, ())
        diff = {k: (theirs[section][k], v) for k, v in mine[section].items()
                if k not in neutral and theirs[section][k] != v}
        if diff:
            raise TrainingError(
                f"{path} was trained with a different [{section}] config (checkpoint -> now: {diff}); "
                "use a new run folder or the same config."
            )
