"""What every task family's LightningModule shares: the run's training clock and training curve
(kept in checkpoints, so that a resumed run continues both), the evaluation summary after
modulation and after each inner step (overall and per mode, with 95% CIs, logged), the
per-group optimiser with its learning-rate schedule, and the identity that results.json records.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import lightning as L
import torch
from torch import Tensor

from mumo.core.metrics import summarize
from mumo.provenance import TrainingClock

LR_SCHEDULES = ("constant", "cosine")


def cosine_decay(step: int, total: int) -> float:
    """Factor on the learning rate at meta-iteration `step` of `total`: 1 at 0, 0 at `total`."""
    return 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total))


class Learner(L.LightningModule):
    """Base of the task families' meta-learners.

    A subclass sets `metric` ('mse', 'return'), implements the training step and
    `evaluate_batch(batch, batch_idx) -> (values [S + 1, T], mode [T], before [T] or None)` (the metric
    after modulation and after each inner step, and where the family measures it, before
    modulation), `parameter_groups()` and `describe()`.
    """

    metric = ""

    def __init__(self, lr: float, lr_schedule: str, mode_names: list[str]) -> None:
        super().__init__()
        self.lr, self.lr_schedule = lr, lr_schedule
        self.mode_names = list(mode_names)
        self.test_metrics: dict | None = None
        self.clock = TrainingClock()
        # Training curve: train: [step, metric after adaptation on the training batch] every log_every_n_steps;
        # val: [step, metric after modulation, metric after adaptation] at every validation.
        self.history: dict[str, list[list[float]]] = {"train": [], "val": []}
        self._fit_started: float | None = None
        self._eval_outputs: list[tuple[Tensor, Tensor, Tensor | None]] = []

    # --- what results.json records about the method ------------------------------------------
    def describe(self) -> dict:
        """method, modulation, mode_names, inner_steps, inner_lr, first_order, meta_lr, lr_schedule,
        engine and metric: the identity of the run in results.json."""
        raise NotImplementedError

    def family_figures(self, datamodule, out: Path) -> dict[str, Path]:
        """The family's own figures of a finished run, written into `out` (name -> path)."""
        return {}

    # --- optimiser ----------------------------------------------------------------------------
    def parameter_groups(self) -> list[dict]:
        """Adam's parameter groups (each clipped separately where the family clips)."""
        raise NotImplementedError

    def configure_optimizers(self) -> torch.optim.Optimizer | dict:
        # The fused kernel (CPU and CUDA) is one op for all parameters: ~10x less than the loop.
        optimizer = torch.optim.Adam(self.parameter_groups(), lr=self.lr, fused=True)
        if self.lr_schedule == "constant":
            return optimizer
        total = self.trainer.max_steps
        # A function, not a stored T_max: a run resumed with a larger max_steps stretches its decay.
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: cosine_decay(step, total))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def record_train(self, value: Tensor) -> None:
        """The training curve's point for this step (every `log_every_n_steps`): the metric after
        adaptation on the training meta-batch."""
        if self.global_step % self.trainer.log_every_n_steps == 0:
            self.history["train"].append([self.global_step, value.item()])

    # --- clock and training curve, across resumed segments -----------------------------------
    def on_train_start(self) -> None:
        self.clock.start(self.global_step)
        self._fit_started = time.perf_counter()

    def _tick(self) -> None:
        """Bring the current training segment's step and seconds up to now (no-op outside fit)."""
        if self._fit_started is not None:
            self.clock.stop(self.global_step, time.perf_counter() - self._fit_started)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        self._tick()
        checkpoint["training_clock"] = self.clock.state_dict()
        checkpoint["history"] = self.history

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.clock.load_state_dict(checkpoint.get("training_clock", {}))
        self.history = checkpoint.get("history", {"train": [], "val": []})

    def on_train_end(self) -> None:
        self._tick()
        self._fit_started = None

    # --- evaluation ---------------------------------------------------------------------------
    def evaluate_batch(self, batch, batch_idx: int) -> tuple[Tensor, Tensor, Tensor | None]:
        raise NotImplementedError

    def validation_step(self, batch, batch_idx: int) -> None:
        self._eval_outputs.append(self.evaluate_batch(batch, batch_idx))

    def test_step(self, batch, batch_idx: int) -> None:
        self._eval_outputs.append(self.evaluate_batch(batch, batch_idx))

    def _summarize_eval(self, prefix: str) -> dict:
        values, mode, before = zip(*self._eval_outputs)
        self._eval_outputs.clear()
        before = torch.cat(before) if before[0] is not None else None
        metrics = summarize(torch.cat(values, dim=1), torch.cat(mode), self.mode_names, self.metric, before)
        keys = [f"{stage}_{self.metric}" for stage in ("pre_modulation", "post_modulation", "post_adaptation")]
        flat = {f"{prefix}/{k}": metrics[k] for k in keys if k in metrics}
        for name, m in metrics["per_mode"].items():
            flat |= {f"{prefix}/{name}/{k}": m[k] for k in keys if k in m}
        self.log_dict(flat, rank_zero_only=True)  # every process evaluates the full fixed set
        return metrics

    def on_validation_epoch_end(self) -> None:
        metrics = self._summarize_eval("val")
        if not self.trainer.sanity_checking:
            self.history["val"].append([self.global_step, metrics[f"post_modulation_{self.metric}"],
                                        metrics[f"post_adaptation_{self.metric}"]])

    def on_test_epoch_end(self) -> None:
        self.test_metrics = self._summarize_eval("test")
