"""LightningDataModule for meta-RL: meta-batches of tasks (goals, target speeds, target
locations); the rollouts are collected by the meta-learner itself, with each task's current policy.

Training draws fresh balanced meta-batches forever from a seeded generator; validation and test
use fixed task sets built from their own seeds, identical across runs, methods and seeds.
"""

from __future__ import annotations

from mumo.core.stream import TaskDataModule
from mumo.rl.tasks import RLEnvironment


class RLDataModule(TaskDataModule):
    """Tasks of `env`'s multimodal task distribution.

    No `default_threads`: `threads=auto` gives an RL run every usable CPU. Its ops are large
    (40 tasks x 2,000 samples); on the 2-core development CPU, idle, a paper-scale navigation
    meta-iteration took 2.23 s at two threads against 4.14 s at one (docs/benchmarks.md).

    Args:
        env: the environment (`mumo.rl.navigation.Navigation`, `mumo.rl.half_cheetah.HalfCheetahTarget`).
        meta_batch_size: tasks per training meta-batch; a multiple of the number of modes (balanced).
        seed: seed of the training task stream.
        val_tasks_per_mode / test_tasks_per_mode, val_seed / test_seed: the fixed evaluation sets.
        eval_batch_size: tasks evaluated together.
    """

    def __init__(self, env: RLEnvironment, meta_batch_size: int = 40, seed: int = 0, val_tasks_per_mode: int = 10,
                 test_tasks_per_mode: int = 100, val_seed: int = 1_000_003, test_seed: int = 2_000_003,
                 eval_batch_size: int = 40) -> None:
        super().__init__(env.tasks, env.tasks.modes, meta_batch_size, seed, val_tasks_per_mode,
                         test_tasks_per_mode, val_seed, test_seed, eval_batch_size)
        self.env = env

    def learner_inputs(self) -> dict:
        return {**super().learner_inputs(), "env": self.env}
