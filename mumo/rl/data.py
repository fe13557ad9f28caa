"""LightningDataModule for 2-D navigation: meta-batches of goals (the tasks); the rollouts are
collected by the meta-learner itself, with each task's current policy.

Training draws fresh balanced meta-batches forever from a seeded generator; validation and test
use fixed goal sets built from their own seeds, identical across runs, methods and seeds.
"""

from __future__ import annotations

from mumo.core.stream import TaskDataModule
from mumo.rl.navigation import GoalDistribution


class NavigationDataModule(TaskDataModule):
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
        super().__init__(GoalDistribution(modes, noise_std), modes, meta_batch_size, seed, val_tasks_per_mode,
                         test_tasks_per_mode, val_seed, test_seed, eval_batch_size)
