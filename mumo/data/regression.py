"""LightningDataModule for multimodal few-shot regression.

Training draws fresh stratified meta-batches forever from a seeded generator;
validation and test use fixed task sets built from their own seeds, identical across runs,
methods and training seeds, so numbers compare.
"""

from __future__ import annotations

import lightning as L
import torch
from torch.utils.data import DataLoader

from mumo.data.episode import Episode
from mumo.data.functions import RegressionTasks
from mumo.data.stream import TaskStream
from mumo.errors import ConfigError


def rank_share(episode: Episode, rank: int, world_size: int) -> Episode:
    """Every `world_size`-th task from `rank` on: disjoint shares that cover the meta-batch.

    All ranks draw the same meta-batch from the same seed, so no task is seen twice; striding
    keeps each share stratified across modes.
    """
    if world_size == 1:
        return episode
    if episode.num_tasks % world_size:
        raise ConfigError(
            "meta_batch_size", f"must be divisible by the number of processes ({world_size}); got {episode.num_tasks}"
        )
    return episode.select(slice(rank, None, world_size))


def _chunks(episode: Episode, size: int) -> list[Episode]:
    return [episode.select(slice(i, i + size)) for i in range(0, episode.num_tasks, size)]


class RegressionDataModule(L.LightningDataModule):
    """Episodic batches of the `modes`-mode regression distribution.

    Args:
        meta_batch_size: tasks per training meta-batch; a multiple of `modes` (stratified).
        seed: seed of the training task stream.
        val_tasks_per_mode / test_tasks_per_mode: size of the fixed evaluation sets.
        val_seed / test_seed: seeds of the fixed evaluation sets (not tied to `seed`).
        eval_batch_size: tasks per evaluation batch.
        families: the function families to draw tasks from, by name (e.g. [sinusoid, quadratic]);
            None: the first `modes` (see `RegressionTasks`).
    """

    # threads=auto on the CPU (mumo.threads): on a 2-core machine one thread was as fast as two idle
    # from trained weights (17% slower from fresh ones) and 2.8-3.4x faster beside a busy process
    # (README, "Threads on a shared machine").
    default_threads = {"cpu": 1}

    def __init__(
        self,
        modes: int = 2,
        shots: int = 5,
        queries: int = 5,
        noise_std: float = 0.3,
        meta_batch_size: int = 50,
        seed: int = 0,
        val_tasks_per_mode: int = 250,
        test_tasks_per_mode: int = 1000,
        val_seed: int = 1_000_003,
        test_seed: int = 2_000_003,
        eval_batch_size: int = 1000,
        families: list[str] | None = None,
    ) -> None:
        super().__init__()
        self.tasks = RegressionTasks(modes, shots, queries, noise_std, families=families)
        self.train_stream = TaskStream(self.tasks, meta_batch_size // modes, seed)
        self.val_tasks_per_mode, self.test_tasks_per_mode = val_tasks_per_mode, test_tasks_per_mode
        self.val_seed, self.test_seed = val_seed, test_seed
        self.eval_batch_size = eval_batch_size

    @property
    def mode_names(self) -> list[str]:
        return self.tasks.mode_names

    def val_set(self) -> Episode:
        return self.tasks.fixed_set(self.val_tasks_per_mode, self.val_seed)

    def test_set(self) -> Episode:
        return self.tasks.fixed_set(self.test_tasks_per_mode, self.test_seed)

    def train_dataloader(self) -> DataLoader:
        # Pinned host memory lets Lightning's non-blocking copy overlap the GPU's previous step.
        return DataLoader(self.train_stream, batch_size=None, pin_memory=torch.cuda.is_available())

    def val_dataloader(self) -> DataLoader:
        return DataLoader(_chunks(self.val_set(), self.eval_batch_size), batch_size=None)

    def test_dataloader(self) -> DataLoader:
        return DataLoader(_chunks(self.test_set(), self.eval_batch_size), batch_size=None)

    def on_before_batch_transfer(self, batch: Episode, dataloader_idx: int) -> Episode:
        """Training batches: mark them consumed; with several processes, keep this rank's share."""
        if self.trainer is None or not self.trainer.training:
            return batch
        self.train_stream.mark_consumed()
        return rank_share(batch, self.trainer.global_rank, self.trainer.world_size)

    def state_dict(self) -> dict:
        return {"train_stream": self.train_stream.state_dict()}

    def load_state_dict(self, state_dict: dict) -> None:
        self.train_stream.load_state_dict(state_dict["train_stream"])
