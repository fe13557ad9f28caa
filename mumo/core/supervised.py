"""The LightningModule of supervised task families (regression, classification): meta-training and
meta-evaluation through an engine (paper Alg. 1, outer loop). A family subclasses it with its
task loss, metric and figures (`mumo.regression.module`, `mumo.classification.module`)."""

from __future__ import annotations

import time
from pathlib import Path

import torch
from torch import Tensor

from mumo.core.engines import TaskLoss, make_engine
from mumo.core.episode import Episode
from mumo.core.graph_step import GraphedMetaStep
from mumo.core.inner_sgd import InnerSGD
from mumo.core.learner import Learner
from mumo.core.meta_model import MetaModel
from mumo.errors import NonFiniteLossError

EMBEDDING_TASKS = 1000  # test tasks shown in the tSNE figure


class SupervisedMetaLearner(Learner):
    """Trains theta and the encoder/heads jointly through the adapted query loss.

    A family sets `task` (its name in results.json), `loss` (the inner and outer `TaskLoss`) and
    `metric` (what evaluation reports: `loss.metric`), and adds its figures.

    Meta-loss: mean over tasks of the query loss after `inner_loop.steps` adaptation steps.
    Optimiser: Adam for the base net and for encoder + heads, each group clipped separately to
    global norm `grad_clip` (as the original code does). `lr_schedule`: `constant` (the paper) or
    `cosine` (lr decays to 0 over the trainer's `max_steps`).

    Evaluation (validation and test) records the per-task query metric after 0..S inner steps;
    `test_metrics` holds the summary of the last test run.
    """

    task = ""
    loss: TaskLoss

    def __init__(
        self,
        net: MetaModel,
        inner_loop: InnerSGD,
        engine: str = "batched",
        weight_updates: str = "auto",
        lr: float = 1e-3,
        grad_clip: float | None = 2.0,
        lr_schedule: str = "constant",
        mode_names: list[str] | None = None,
        graph_step: bool | str = "auto",
        check_finite_every: int = 50,
    ) -> None:
        super().__init__(lr, lr_schedule, mode_names or [str(m) for m in range(net.per_mode_nets or 1)])
        self.graph_step = graph_step
        self.check_finite_every = check_finite_every
        self.static_step: GraphedMetaStep | None = None
        self.model = net
        self.inner_loop = inner_loop
        self.engine = make_engine(engine, inner_loop, self.loss, weight_updates)
        self.grad_clip = grad_clip

    def embedding_figure(self, test_set, out: Path) -> dict[str, Path]:
        """For MuMoMAML, the tSNE of the task embeddings of up to 1,000 test tasks (Figures 2c, 4)."""
        from mumo.plots import first_tasks_per_mode, plot_task_embeddings

        if self.model.encoder is None:
            return {}
        shown = first_tasks_per_mode(test_set, EMBEDDING_TASKS // len(self.mode_names))
        with torch.no_grad():
            embedding = self.model.embed(shown)
        path = out / "task_embeddings.png"
        plot_task_embeddings(embedding, shown.mode, self.mode_names,
                             f"task embeddings of {shown.num_tasks} test tasks ({self.model.modulation})", path)
        return {"task_embeddings": path}

    def describe(self) -> dict:
        loop = self.inner_loop
        modes = range(len(self.mode_names))
        per_mode = {"inner_lr_per_mode": [loop.mode_lr(m) for m in modes],
                    "inner_steps_per_mode": [loop.mode_steps(m) for m in modes]} if loop.per_mode else {}
        return {"method": self.model.method, "modulation": self.model.modulation, "mode_names": self.mode_names,
                "inner_steps": loop.steps, "inner_lr": loop.lr, **per_mode,
                "first_order": loop.first_order, "meta_lr": self.lr, "lr_schedule": self.lr_schedule,
                "engine": self.engine.name, "metric": self.metric, "task": self.task}

    # --- training -------------------------------------------------------------------------
    def meta_loss(self, batch: Episode) -> Tensor:
        """Mean over tasks of the query loss after adaptation (second order unless first_order)."""
        return self.engine.query_loss(self.model, batch, create_graph=True).mean()

    def setup(self, stage: str) -> None:
        """Pick the training path: the graph step (manual optimisation) where it pays, on CUDA."""
        on_cuda = self.trainer.strategy.root_device.type == "cuda"
        use_static = self.graph_step is True or (self.graph_step == "auto" and on_cuda)
        self.automatic_optimization = not use_static
        # One graph per process is untested with DDP's gradient all-reduce: capture single-process runs only.
        self._graph_capture = use_static and on_cuda and self.trainer.world_size == 1

    def training_step(self, batch: Episode, batch_idx: int) -> Tensor:
        if self.automatic_optimization:
            loss = self.meta_loss(batch)
            if not torch.isfinite(loss):
                raise NonFiniteLossError(self.global_step, loss.item())
        else:
            loss = self._static_training_step(batch)
        self.record_train(loss)
        # Under DDP each process holds its share of the tasks; the logged loss is their mean.
        self.log("train/meta_loss", loss, prog_bar=True, batch_size=batch.num_tasks,
                 sync_dist=self.trainer.world_size > 1)
        return loss

    def _static_training_step(self, batch: Episode) -> Tensor:
        optimizer = self.optimizers()
        if self.static_step is None:
            self.static_step = GraphedMetaStep(self, optimizer.optimizer, use_graph=self._graph_capture)
        step = self.global_step
        loss = None

        def closure() -> Tensor:
            nonlocal loss
            loss = self.static_step(batch, step)
            return loss

        optimizer.step(closure=closure)
        if (scheduler := self.lr_schedulers()) is not None:  # manual optimisation steps it itself
            scheduler.step()
        if (step + 1) % self.check_finite_every == 0:
            self.static_step.check_finite()
        return loss.detach().clone()

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        if self.static_step is not None:  # never write parameters updated from a non-finite loss
            self.static_step.check_finite()
        super().on_save_checkpoint(checkpoint)

    def on_train_end(self) -> None:
        if self.static_step is not None:
            self.static_step.check_finite()
        super().on_train_end()

    def on_train_batch_start(self, batch: Episode, batch_idx: int) -> None:
        self._step_started = time.perf_counter()

    def on_train_batch_end(self, outputs, batch: Episode, batch_idx: int) -> None:
        seconds = time.perf_counter() - self._step_started
        self.log("train/meta_iters_per_s", 1.0 / seconds)
        self.log("train/tasks_per_s", batch.num_tasks / seconds)
        self.log("train/lr", self.optimizers().param_groups[0]["lr"])

    def parameter_groups(self) -> list[dict]:
        groups = [{"params": self.model.base_parameters(), "name": "base"}]
        if encoder := self.model.encoder_parameters():
            groups.append({"params": encoder, "name": "encoder"})
        if fixed := self.model.fixed_parameters():
            # lr 0: Adam leaves them exactly as they are, and zero_grad clears their gradients.
            groups.append({"params": fixed, "name": "fixed", "lr": 0.0})
        return groups

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
        """Per-task query metric [S + 1, T] after 0..S inner steps (needs gradients, no 2nd order)."""
        with torch.enable_grad():
            return self.engine.query_loss(self.model, batch, create_graph=False, all_steps=True, metric=True).detach()

    def evaluate_batch(self, batch: Episode, batch_idx: int) -> tuple[Tensor, Tensor, None]:
        return self.evaluate(batch), batch.mode, None
