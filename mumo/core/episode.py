"""The episodic batch: a meta-batch of tasks with a leading task dimension."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor


class Episode(NamedTuple):
    """A meta-batch of T tasks (K support and Q query points each).

    A NamedTuple so that Lightning moves it between devices as a collection.
    """

    support_x: Tensor  # [T, K, d_in]
    support_y: Tensor  # [T, K, d_out]
    query_x: Tensor  # [T, Q, d_in]
    query_y: Tensor  # [T, Q, d_out]
    mode: Tensor  # [T] long: index of the task family (ground-truth mode label)
    params: Tensor  # [T, P] the task's true parameters (for plots and analysis)

    @property
    def num_tasks(self) -> int:
        return self.support_x.shape[0]

    def select(self, index: slice | Tensor) -> Episode:
        """The sub-episode of the tasks picked by `index` (slice, bool mask or indices)."""
        return Episode(*(field[index] for field in self))

    @staticmethod
    def cat(episodes: list[Episode]) -> Episode:
        """Concatenate episodes along the task dimension."""
        return Episode(*(torch.cat(fields) for fields in zip(*episodes)))
