"""Modulation heads: task embedding -> tau for every modulated layer (paper §3.1, Eq. 2).

Every family has its own task encoder (a BiLSTM over support pairs, a GRU over rollouts, a conv
net over support images); all of them end in these heads.
"""

from __future__ import annotations

from torch import Tensor, nn


class ModulationHeads(nn.Module):
    """One Linear head per modulated layer, with no output nonlinearity: tau_l = W_l v + b_l."""

    def __init__(self, embedding_size: int, tau_sizes: list[int]) -> None:
        super().__init__()
        self.heads = nn.ModuleList(nn.Linear(embedding_size, size) for size in tau_sizes)

    def forward(self, embedding: Tensor) -> tuple[Tensor, ...]:
        return tuple(head(embedding) for head in self.heads)
