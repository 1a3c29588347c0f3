"""The run folder and what is written into it besides checkpoints: config, radiometry, losses, validation, pictures.

Layout: ``config.toml`` (with git commit and digest), ``radiometry.json``, ``losses.csv`` (one row per step, every
loss term), ``losses.png``, ``val.csv`` (RGB->LC accuracy per validation), ``samples/epoch_NNNN.png`` and
``checkpoints/`` (``last.pt``, ``best.pt``). Only rank 0 writes.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from lcgan_qgis.core.storage.files import AtomicFile

from .checkpoints import git_commit, recover_interrupted
from .config import TrainConfig

CSV_KEYS_BEFORE = ("step", "epoch", "lr", "seconds")
VAL_KEYS = ("step", "accuracy", "mean_iou", "baseline_accuracy")
LAST_CHECKPOINT = "last.pt"  # (the trainer's CHECKPOINT_NAME)


class RunLog:
    """Writes one run folder. ``loss_keys`` are the columns after ``step, epoch, lr, seconds``."""

    def __init__(self, run_dir: str | Path, loss_keys: tuple[str, ...]) -> None:
        self.run_dir = Path(run_dir)
        self.keys = (*CSV_KEYS_BEFORE, *loss_keys)
        self._file: Any = None
        self._writer: csv.DictWriter | None = None
        if self.checkpoints.is_dir():  # a run killed between writing a checkpoint and renaming it: keep its step
            recover_interrupted(self.checkpoints / LAST_CHECKPOINT)

    @property
    def checkpoints(self) -> Path:
        return self.run_dir / "checkpoints"

    def prepare(self, config: TrainConfig, radiometry_json: str) -> None:
        """Create the folders and write ``config.toml`` and ``radiometry.json``."""
        self.checkpoints.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "samples").mkdir(exist_ok=True)
        header = f"# lcgan training config\n# git commit: {git_commit()}\n# digest: {config.digest()}\n\n"
        (self.run_dir / "config.toml").write_text(header + config.to_toml(), encoding="utf-8")
        (self.run_dir / "radiometry.json").write_text(radiometry_json, encoding="utf-8")

    # -- losses.csv -------------------------------------------------------------------------------------------
    def open_losses(self, resumed_step: int) -> None:
        """Open ``losses.csv`` for appending; rows after ``resumed_step`` (not checkpointed) are dropped first."""
        path = self.run_dir / "losses.csv"
        keep = [r for r in _read_rows(path) if int(r["step"]) <= resumed_step]
        _write_rows(path, self.keys, keep)
        self._file = open(path, "a", newline="", encoding="utf-8")  # noqa: SIM115 (closed in close())
        self._writer = csv.DictWriter(self._file, self.keys)

    def log_step(self, row: dict[str, Any]) -> None:
        if self._writer is not None:
            self._writer.writerow(row)

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file, self._writer = None, None

    # -- val.csv ------------------------------------------------------------------------------------------------
    def log_validation(self, step: int, result: dict[str, Any]) -> float:
        """Append a validation row (rows from a later, abandoned run are dropped); returns the best EARLIER
        accuracy (-1 when none)."""
        path = self.run_dir / "val.csv"
        rows = [r for r in _read_rows(path) if int(r["step"]) < step]
        best = max((float(r["accuracy"]) for r in rows), default=-1.0)
        rows.append({"step": step, "accuracy": f"{result['accuracy']:.5f}", "mean_iou": f"{result['mean_iou']:.5f}",
                     "baseline_accuracy": f"{result['baseline']['accuracy']:.5f}"})
        _write_rows(path, VAL_KEYS, rows)
        return best

    # -- pictures -----------------------------------------------------------------------------------------------
    def write_pictures(self, tag: str, rows: list[dict[str, Any]], scheme: Any, step: int) -> None:
        """``losses.png`` and ``samples/<tag>.png`` (rows from :meth:`CycleGAN.translate_sample`)."""
        from .plots import plot_losses, plot_samples

        plot_losses(self.run_dir / "losses.csv", self.run_dir / "losses.png", f"{self.run_dir.name}, step {step}")
        plot_samples(rows, scheme, self.run_dir / "samples" / f"{tag}.png", f"{self.run_dir.name}, {tag}")


def _read_rows(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _write_rows(path: Path, keys: tuple[str, ...], rows: list[dict[str, Any]]) -> None:
    """Rewrite a CSV through the core's :class:`~lcgan_qgis.core.storage.files.AtomicFile` (a crash keeps the old
    file)."""
    with AtomicFile(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, keys, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
