"""What every task family's data has: a seeded, resumable stream of training meta-batches and
fixed, seeded validation and test sets (`TaskDataModule`)."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Any, Protocol

import lightning as L
import torch
from torch import Tensor
from torch.utils.data import DataLoader, IterableDataset


class TaskSampler(Protocol):
    """A task distribution: `sample(tasks_per_mode, generator)` draws a balanced meta-batch (with
    `num_tasks` and `select(index)`), `fixed_set(tasks_per_mode, seed)` a fixed one."""

    mode_names: list[str]

    def sample(self, tasks_per_mode: int, generator: torch.Generator) -> Any: ...

    def fixed_set(self, tasks_per_mode: int, seed: int) -> Any: ...


class TaskStream(IterableDataset):
    """An endless stream of meta-batches whose position can be saved and restored exactly.

    Lightning fetches a batch ahead of the one being trained on, so the generator's own state is
    ahead of training. The stream therefore remembers the state before every batch handed out
    and not yet consumed (`mark_consumed`), and saves the state before the oldest of them: a
    resumed run sees exactly the batches an uninterrupted run would have seen.
    """

    def __init__(self, tasks: TaskSampler, tasks_per_mode: int | list[int], seed: int) -> None:
        self.tasks, self.tasks_per_mode = tasks, tasks_per_mode
        self.generator = torch.Generator().manual_seed(seed)
        self._unconsumed: deque[Tensor] = deque()

    def __iter__(self) -> Iterator:
        self._unconsumed.clear()
        while True:
            self._unconsumed.append(self.generator.get_state())
            yield self.tasks.sample(self.tasks_per_mode, self.generator)

    def mark_consumed(self) -> None:
        """The oldest batch handed out is now being trained on."""
        if self._unconsumed:
            self._unconsumed.popleft()

    def state_dict(self) -> dict:
        return {"generator": self._unconsumed[0] if self._unconsumed else self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        self._unconsumed.clear()


def chunks(batch: Any, size: int) -> list:
    """`batch` cut into consecutive meta-batches of at most `size` tasks."""
    return [batch.select(slice(i, i + size)) for i in range(0, batch.num_tasks, size)]


class TaskDataModule(L.LightningDataModule):
    """A task family's data: endless balanced training meta-batches from a seeded generator (or,
    where the family's sampler takes them, `train_tasks_per_mode` tasks of each mode), and
    validation and test sets fixed by their own seeds (identical across runs, methods and training
    seeds, so that numbers compare), evaluated `eval_batch_size` tasks at a time."""

    def __init__(self, tasks: TaskSampler, modes: int, meta_batch_size: int, seed: int, val_tasks_per_mode: int,
                 test_tasks_per_mode: int, val_seed: int, test_seed: int, eval_batch_size: int,
                 train_tasks_per_mode: list[int] | None = None) -> None:
        super().__init__()
        self.tasks = tasks
        # Per-mode counts (unbalanced training meta-batches) for a sampler that takes them.
        per_mode = meta_batch_size // modes if train_tasks_per_mode is None else list(train_tasks_per_mode)
        self.train_stream = TaskStream(tasks, per_mode, seed)
        self.val_tasks_per_mode, self.test_tasks_per_mode = val_tasks_per_mode, test_tasks_per_mode
        self.val_seed, self.test_seed = val_seed, test_seed
        self.eval_batch_size = eval_batch_size

    @property
    def mode_names(self) -> list[str]:
        return self.tasks.mode_names

    def learner_inputs(self) -> dict[str, Any]:
        """What the family's meta-learner is built with besides its config: the mode names (and,
        for RL, the environment)."""
        return {"mode_names": self.mode_names}

    def val_set(self) -> Any:
        return self.tasks.fixed_set(self.val_tasks_per_mode, self.val_seed)

    def test_set(self) -> Any:
        return self.tasks.fixed_set(self.test_tasks_per_mode, self.test_seed)

    def train_dataloader(self) -> DataLoader:
        # Pinned host memory lets Lightning's non-blocking copy overlap the GPU's previous step.
        return DataLoader(self.train_stream, batch_size=None, pin_memory=torch.cuda.is_available())

    def val_dataloader(self) -> DataLoader:
        return DataLoader(chunks(self.val_set(), self.eval_batch_size), batch_size=None)

    def test_dataloader(self) -> DataLoader:
        return DataLoader(chunks(self.test_set(), self.eval_batch_size), batch_size=None)

    def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Training batches: mark them consumed (see `TaskStream`)."""
        if self.trainer is not None and self.trainer.training:
            self.train_stream.mark_consumed()
        return batch

    def state_dict(self) -> dict:
        return {"train_stream": self.train_stream.state_dict()}

    def load_state_dict(self, state_dict: dict) -> None:
        self.train_stream.load_state_dict(state_dict["train_stream"])
