"""The seeded, resumable stream of training meta-batches that every task family draws from."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Any, Protocol

import torch
from torch import Tensor
from torch.utils.data import IterableDataset


class TaskSampler(Protocol):
    """A task distribution: `sample(tasks_per_mode, generator)` draws a balanced meta-batch."""

    def sample(self, tasks_per_mode: int, generator: torch.Generator) -> Any: ...


class TaskStream(IterableDataset):
    """An endless stream of meta-batches whose position can be saved and restored exactly.

    Lightning fetches a batch ahead of the one being trained on, so the generator's own state is
    ahead of training. The stream therefore remembers the state before every batch handed out
    and not yet consumed (`mark_consumed`), and saves the state before the oldest of them: a
    resumed run sees exactly the batches an uninterrupted run would have seen.
    """

    def __init__(self, tasks: TaskSampler, tasks_per_mode: int, seed: int) -> None:
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
