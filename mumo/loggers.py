"""Lightning's CSV and W&B loggers, adjusted: a resumed run continues its history, and W&B keeps
quiet about what mumo already says."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

from lightning.fabric.loggers.csv_logs import _ExperimentWriter
from lightning.pytorch.loggers import CSVLogger as LightningCSVLogger
from lightning.pytorch.loggers import WandbLogger as LightningWandbLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment
from lightning.pytorch.utilities import rank_zero_only


class _ContinuingWriter(ExperimentWriter):
    """Lightning's CSV writer, except that an existing metrics.csv is continued, not deleted."""

    def _check_log_dir_exists(self) -> None:
        if os.path.isfile(self.metrics_file_path):
            with open(self.metrics_file_path, newline="") as f:
                self.metrics_keys = sorted(csv.DictReader(f).fieldnames or [])


class CSVLogger(LightningCSVLogger):
    """`lightning.pytorch.loggers.CSVLogger` for runs that may be resumed in their own directory.

    Lightning's deletes the directory's metrics.csv when a new run opens it. This one keeps it;
    `continue_from(step)` (called on resume) drops the rows logged after the checkpoint's step by
    the interrupted segment, so the file holds each step once, in order.
    """

    @property
    @rank_zero_experiment
    def experiment(self) -> _ExperimentWriter:
        if self._experiment is None:
            os.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _ContinuingWriter(log_dir=self.log_dir)
        return self._experiment

    @rank_zero_only
    def continue_from(self, step: int) -> None:
        path = self.experiment.metrics_file_path
        if not os.path.isfile(path):
            return
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            fields, rows = reader.fieldnames or [], [r for r in reader if float(r["step"]) <= step]
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)


# WandbLogger's arguments that W&B accepts only as text
WANDB_TEXT_ARGUMENTS = ("project", "entity", "group", "name", "job_type")


class WandbLogger(LightningWandbLogger):
    """`lightning.pytorch.loggers.WandbLogger` that

    - passes names and tags to W&B as text, also where Hydra read them as numbers (W&B rejects
      `project=2024` with a validation traceback);
    - continues the W&B run found in `save_dir` (a run resumed in its own directory) unless an
      `id` is given;
    - does not pass W&B the deprecated `anonymous` setting (Lightning always does, and W&B warns);
    - asks W&B for its quiet console output: `mumo.outputs.close_loggers` prints the one line on
      how to upload an offline run.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        import wandb

        if kwargs.get("id") is None and kwargs.get("save_dir"):
            kwargs["id"] = previous_wandb_run(Path(kwargs["save_dir"]))
        for key in WANDB_TEXT_ARGUMENTS:  # a name the command line parsed as a number (logger.wandb.project=2024)
            if kwargs.get(key) is not None:
                kwargs[key] = str(kwargs[key])
        if kwargs.get("tags") is not None:
            kwargs["tags"] = [str(tag) for tag in kwargs["tags"]]
        kwargs.setdefault("settings", wandb.Settings(quiet=True))
        super().__init__(*args, **kwargs)
        self._wandb_init.pop("anonymous", None)


def previous_wandb_run(save_dir: Path) -> str | None:
    """The id of the newest W&B run logged under `save_dir` (its wandb/<mode>-run-<time>-<id>)."""
    runs = sorted((save_dir / "wandb").glob("*run-*-*"))
    return runs[-1].name.rsplit("-", 1)[-1] if runs else None
