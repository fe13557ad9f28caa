"""LightningModule for meta-training and meta-evaluation (paper Alg. 1, outer loop)."""

from __future__ import annotations

import math
import time

import lightning as L
import torch
from torch import Tensor

from mumo.data.episode import Episode
from mumo.errors import NonFiniteLossError
from mumo.fast_step import MetaIterationStep
from mumo.inner_loop import InnerLoop, make_engine
from mumo.metrics import summarize
from mumo.models.meta_model import MetaModel
from mumo.provenance import TrainingClock


LR_SCHEDULES = ("constant", "cosine")


def cosine_decay(step: int, total: int) -> float:
    """Factor on the learning rate at meta-iteration `step` of `total`: 1 at 0, 0 at `total`."""
    return 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total))


class MetaLearner(L.LightningModule):
    """Trains theta and the encoder/heads jointly through the adapted query loss.

    Meta-loss: mean over tasks of the query MSE after `inner_loop.steps` adaptation steps.
    Optimiser: Adam for the base net and for encoder + heads, each group clipped separately to
    global norm `grad_clip` (as the original code does). `lr_schedule`: `constant` (the paper) or
    `cosine` (lr decays to 0 over the trainer's `max_steps`).

    Evaluation (validation and test) records the per-task query MSE after 0..S inner steps;
    `test_metrics` holds the summary of the last test run.
    """

    def __init__(
        self,
        model: MetaModel,
        inner_loop: InnerLoop,
        engine: str = "batched",
        fast_weights: str = "auto",
        lr: float = 1e-3,
        grad_clip: float | None = 2.0,
        lr_schedule: str = "constant",
        mode_names: list[str] | None = None,
        fast_path: bool | str = "auto",
        check_finite_every: int = 50,
    ) -> None:
        super().__init__()
        self.fast_path, self.lr_schedule = fast_path, lr_schedule
        self.check_finite_every = check_finite_every
        self.fast_step: MetaIterationStep | None = None
        self.model = model
        self.inner_loop = inner_loop
        self.engine = make_engine(engine, inner_loop, fast_weights)
        self.lr, self.grad_clip = lr, grad_clip
        self.mode_names = mode_names or [str(m) for m in range(model.per_mode_nets or 1)]
        self.test_metrics: dict | None = None
        self.clock = TrainingClock()
        # Training curve, kept with the checkpoint so that a resumed run continues it:
        # train: [step, meta-loss] every log_every_n_steps; val: [step, post-modulation MSE, post-adaptation MSE].
        self.history: dict[str, list[list[float]]] = {"train": [], "val": []}
        self._fit_started: float | None = None
        self._eval_outputs: list[tuple[Tensor, Tensor]] = []

    # --- training -------------------------------------------------------------------------
    def meta_loss(self, batch: Episode) -> Tensor:
        """Mean over tasks of the query MSE after adaptation (second order unless first_order)."""
        return self.engine.query_mse(self.model, batch, create_graph=True).mean()

    def setup(self, stage: str) -> None:
        """Pick the training path: the fast path (manual optimisation) where it pays, on CUDA."""
        on_cuda = self.trainer.strategy.root_device.type == "cuda"
        use_fast = self.fast_path is True or (self.fast_path == "auto" and on_cuda)
        self.automatic_optimization = not use_fast
        # One graph per process is untested with DDP's gradient all-reduce: capture single-process runs only.
        self._graph_capture = use_fast and on_cuda and self.trainer.world_size == 1

    def training_step(self, batch: Episode, batch_idx: int) -> Tensor:
        if self.automatic_optimization:
            loss = self.meta_loss(batch)
            if not torch.isfinite(loss):
                raise NonFiniteLossError(self.global_step, loss.item())
        else:
            loss = self._fast_training_step(batch)
        if self.global_step % self.trainer.log_every_n_steps == 0:
            self.history["train"].append([self.global_step, loss.item()])
        # Under DDP each process holds its share of the tasks; the logged loss is their mean.
        self.log("train/meta_loss", loss, prog_bar=True, batch_size=batch.num_tasks,
                 sync_dist=self.trainer.world_size > 1)
        return loss

    def _fast_training_step(self, batch: Episode) -> Tensor:
        optimizer = self.optimizers()
        if self.fast_step is None:
            self.fast_step = MetaIterationStep(self, optimizer.optimizer, use_graph=self._graph_capture)
        step = self.global_step
        loss = None

        def closure() -> Tensor:
            nonlocal loss
            loss = self.fast_step(batch, step)
            return loss

        optimizer.step(closure=closure)
        if (scheduler := self.lr_schedulers()) is not None:  # manual optimisation steps it itself
            scheduler.step()
        if (step + 1) % self.check_finite_every == 0:
            self.fast_step.check_finite()
        return loss.detach().clone()

    def on_train_start(self) -> None:
        self.clock.start(self.global_step)
        self._fit_started = time.perf_counter()

    def _tick(self) -> None:
        """Bring the current training segment's step and seconds up to now (no-op outside fit)."""
        if self._fit_started is not None:
            self.clock.stop(self.global_step, time.perf_counter() - self._fit_started)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        if self.fast_step is not None:  # never write parameters updated from a non-finite loss
            self.fast_step.check_finite()
        self._tick()
        checkpoint["training_clock"] = self.clock.state_dict()
        checkpoint["history"] = self.history

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.clock.load_state_dict(checkpoint.get("training_clock", {}))
        self.history = checkpoint.get("history", {"train": [], "val": []})

    def on_train_end(self) -> None:
        if self.fast_step is not None:
            self.fast_step.check_finite()
        self._tick()
        self._fit_started = None

    def on_train_batch_start(self, batch: Episode, batch_idx: int) -> None:
        self._step_started = time.perf_counter()

    def on_train_batch_end(self, outputs, batch: Episode, batch_idx: int) -> None:
        seconds = time.perf_counter() - self._step_started
        self.log("train/meta_iters_per_s", 1.0 / seconds)
        self.log("train/tasks_per_s", batch.num_tasks / seconds)
        self.log("train/lr", self.optimizers().param_groups[0]["lr"])

    def configure_optimizers(self) -> torch.optim.Optimizer | dict:
        groups = [{"params": self.model.base_parameters(), "name": "base"}]
        if encoder := self.model.encoder_parameters():
            groups.append({"params": encoder, "name": "encoder"})
        # The fused kernel (CPU and CUDA) is one op for all parameters: ~10x less than the loop.
        optimizer = torch.optim.Adam(groups, lr=self.lr, fused=True)
        if self.lr_schedule == "constant":
            return optimizer
        total = self.trainer.max_steps
        # A function, not a stored T_max: a run resumed with a larger max_steps stretches its decay.
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: cosine_decay(step, total))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def clip_gradients_by_group(self, optimizer: torch.optim.Optimizer) -> None:
        """Clip the base net and the encoder + heads separately to global norm `grad_clip`."""
        if self.grad_clip is None:
            return
        for group in optimizer.param_groups:
            torch.nn.utils.clip_grad_norm_(group["params"], self.grad_clip, foreach=True)

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None) -> None:
        self.clip_gradients_by_group(optimizer)

    # --- evaluation -----------------------------------------------------------------------
    def evaluate(self, batch: Episode) -> Tensor:
        """Per-task query MSE [S + 1, T] after 0..S inner steps (needs gradients, no 2nd order)."""
        with torch.enable_grad():
            return self.engine.query_mse(self.model, batch, create_graph=False, all_steps=True).detach()

    def validation_step(self, batch: Episode, batch_idx: int) -> None:
        self._eval_outputs.append((self.evaluate(batch), batch.mode))

    def test_step(self, batch: Episode, batch_idx: int) -> None:
        self._eval_outputs.append((self.evaluate(batch), batch.mode))

    def _summarize_eval(self, prefix: str) -> dict:
        mse = torch.cat([m for m, _ in self._eval_outputs], dim=1)
        mode = torch.cat([m for _, m in self._eval_outputs])
        self._eval_outputs.clear()
        metrics = summarize(mse, mode, self.mode_names)
        flat = {
            f"{prefix}/post_modulation_mse": metrics["post_modulation_mse"],
            f"{prefix}/post_adaptation_mse": metrics["post_adaptation_mse"],
        }
        for name, m in metrics["per_mode"].items():
            flat[f"{prefix}/{name}/post_modulation_mse"] = m["post_modulation_mse"]
            flat[f"{prefix}/{name}/post_adaptation_mse"] = m["post_adaptation_mse"]
        self.log_dict(flat, rank_zero_only=True)  # every process evaluates the full fixed set
        return metrics

    def on_validation_epoch_end(self) -> None:
        metrics = self._summarize_eval("val")
        if not self.trainer.sanity_checking:
            self.history["val"].append(
                [self.global_step, metrics["post_modulation_mse"], metrics["post_adaptation_mse"]])

    def on_test_epoch_end(self) -> None:
        self.test_metrics = self._summarize_eval("test")
