"""LightningDataModule for 2-D navigation: meta-batches of goals (the tasks); the rollouts are
collected by the meta-learner itself, with each task's current policy.

Training draws fresh balanced meta-batches forever from a seeded generator; validation and test
use fixed goal sets built from their own seeds, identical across runs, methods and seeds.
"""

from __future__ import annotations

import lightning as L
import torch
from torch.utils.data import DataLoader

from mumo.data.stream import TaskStream
from mumo.rl.navigation import GoalBatch, GoalDistribution


def _chunks(batch: GoalBatch, size: int) -> list[GoalBatch]:
    return [GoalBatch(batch.goals[i : i + size], batch.mode[i : i + size]) for i in range(0, batch.num_tasks, size)]


class NavigationDataModule(L.LightningDataModule):
    """Goals of the `modes`-mode navigation distribution (2, 4 or 6 modes; std `noise_std`).

    No `default_threads`: `threads=auto` gives a navigation run every usable CPU. Its ops are
    large (40 tasks x 2,000 samples); on the 2-core development CPU, idle, a paper-scale
    meta-iteration took 2.23 s at two threads against 4.14 s at one (docs/benchmarks.md).

    Args:
        meta_batch_size: tasks per training meta-batch; a multiple of `modes` (balanced).
        seed: seed of the training task stream.
        val_tasks_per_mode / test_tasks_per_mode, val_seed / test_seed: the fixed evaluation sets.
        eval_batch_size: tasks evaluated together.
    """

    def __init__(self, modes: int = 2, noise_std: float = 1.0, meta_batch_size: int = 40, seed: int = 0,
                 val_tasks_per_mode: int = 10, test_tasks_per_mode: int = 100, val_seed: int = 1_000_003,
                 test_seed: int = 2_000_003, eval_batch_size: int = 40) -> None:
        super().__init__()
        self.tasks = GoalDistribution(modes, noise_std)
        self.train_stream = TaskStream(self.tasks, meta_batch_size // modes, seed)
        self.val_tasks_per_mode, self.test_tasks_per_mode = val_tasks_per_mode, test_tasks_per_mode
        self.val_seed, self.test_seed = val_seed, test_seed
        self.eval_batch_size = eval_batch_size

    @property
    def mode_names(self) -> list[str]:
        return self.tasks.mode_names

    def val_set(self) -> GoalBatch:
        return self.tasks.sample(self.val_tasks_per_mode, torch.Generator().manual_seed(self.val_seed))

    def test_set(self) -> GoalBatch:
        return self.tasks.sample(self.test_tasks_per_mode, torch.Generator().manual_seed(self.test_seed))

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train_stream, batch_size=None)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(_chunks(self.val_set(), self.eval_batch_size), batch_size=None)

    def test_dataloader(self) -> DataLoader:
        return DataLoader(_chunks(self.test_set(), self.eval_batch_size), batch_size=None)

    def on_before_batch_transfer(self, batch: GoalBatch, dataloader_idx: int) -> GoalBatch:
        if self.trainer is not None and self.trainer.training:
            self.train_stream.mark_consumed()
        return batch

    def state_dict(self) -> dict:
        return {"train_stream": self.train_stream.state_dict()}

    def load_state_dict(self, state_dict: dict) -> None:
        self.train_stream.load_state_dict(state_dict["train_stream"])
