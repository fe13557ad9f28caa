"""LightningDataModule for multimodal few-shot regression.

Training draws fresh stratified meta-batches forever from a seeded generator;
validation and test use fixed task sets built from their own seeds, identical across runs,
methods and training seeds, so numbers compare.
"""

from __future__ import annotations

from mumo.core.episode import Episode
from mumo.regression.functions import RegressionTasks
from mumo.core.stream import TaskDataModule
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


class RegressionDataModule(TaskDataModule):
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
    # (docs/benchmarks.md, "Threads on a shared machine").
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
        super().__init__(RegressionTasks(modes, shots, queries, noise_std, families=families), modes, meta_batch_size,
                         seed, val_tasks_per_mode, test_tasks_per_mode, val_seed, test_seed, eval_batch_size)

    def on_before_batch_transfer(self, batch: Episode, dataloader_idx: int) -> Episode:
        """Training batches: mark them consumed; with several processes, keep this rank's share."""
        batch = super().on_before_batch_transfer(batch, dataloader_idx)
        if self.trainer is None or not self.trainer.training:
            return batch
        return rank_share(batch, self.trainer.global_rank, self.trainer.world_size)
