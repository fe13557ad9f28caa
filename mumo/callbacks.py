"""Lightning callbacks used by the entry points."""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint, TQDMProgressBar


class MetaIterationProgressBar(TQDMProgressBar):
    """Counts meta-iterations (optimizer steps) up to `max_steps`, with the current meta-loss.

    Training streams tasks forever, so Lightning's per-epoch bar would show '?' for the total.
    """

    def on_train_epoch_start(self, trainer: L.Trainer, *_: Any) -> None:
        super().on_train_epoch_start(trainer)
        bar = self.train_progress_bar
        bar.reset(total=trainer.max_steps if trainer.max_steps > 0 else None)
        bar.n = trainer.global_step
        bar.set_description("meta-iter")

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        if self.train_progress_bar is not None and self._should_update(step, self.train_progress_bar.total):
            self.train_progress_bar.n = step
            self.train_progress_bar.set_postfix(self.get_metrics(trainer, pl_module))

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict:
        metrics = super().get_metrics(trainer, pl_module)
        metrics.pop("v_num", None)
        return metrics


class LastCheckpoint(ModelCheckpoint):
    """`last.ckpt`, written after every validation and at the end of training.

    Lightning's step-triggered checkpoint is written before the validation of the same step, so
    it would miss that validation's numbers (the training curve a resumed or re-evaluated run
    carries on). Validation runs every `val_every` meta-iterations, so this is the same cadence;
    the end of training adds the final weights when `max_steps` is not a multiple of it.

    The file is always replaced, also in a run directory that was moved or copied (Lightning
    would write `last-v1.ckpt` beside a `last.ckpt` it had not written at that path, and a later
    resume would start again from the stale one).
    """

    def __init__(self, dirpath: str) -> None:
        super().__init__(dirpath=dirpath, save_last=True, save_top_k=0, enable_version_counter=False)

    def _save_last(self, trainer: L.Trainer) -> None:
        if not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def on_train_batch_end(self, *args: Any, **kwargs: Any) -> None:
        """Not here: after the validation of this step (`on_validation_end`)."""

    def on_train_epoch_end(self, *args: Any, **kwargs: Any) -> None:
        """The task stream has no epochs."""

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._save_last(trainer)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._save_last(trainer)
