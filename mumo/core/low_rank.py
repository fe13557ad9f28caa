"""Per-task fast weights of a linear layer kept as the shared prior plus low-rank SGD updates.

An opt-in storage backend (`weight_updates=low_rank`, or `auto` on the CPU) for networks that
record their low-rank layers' inputs and outputs in a `Tape` (the MLP does); other networks
always get dense per-task weights.

The inner-loop gradient of a linear layer's weight on one task is a sum of outer products,
dL/dW = sum_n dz_n a_n^T over the task's N support points (dz: gradient at the layer's output,
a: its input). After k SGD steps a task's weight is therefore

    W_k = W_0 - lr * U^T V,   U = [dz of steps 1..k]  [k*N, out],  V = [a of steps 1..k]  [k*N, in],

plus, where the inner-gradient clamp was active, a dense correction for the tasks it touched.
For the hidden 100x100 layers of the paper's MLP with 5 support points and 5 steps, U and V hold a
quarter of the numbers of a dense per-task copy, and h W_k^T costs two thin matmuls instead of
materialising [T, 100, 100] weights (and their gradients) at every step. The values and all
derivatives are those of the dense update; only floating-point rounding differs.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor


class LowRankWeight(NamedTuple):
    """W_0 + u^T v + corrections, for every task of a meta-batch.

    Attributes:
        base: W_0, shared [out, in] or per task [T, out, in] (Multi-MAML's per-mode nets).
        u: [T, R, out] and v: [T, R, in], so that the update is u^T v per task; None before the
            first step.
        corrections: (task index [s], dense delta [s, out, in]) pairs added to those tasks only.
    """

    base: Tensor
    u: Tensor | None = None
    v: Tensor | None = None
    corrections: tuple[tuple[Tensor, Tensor], ...] = ()

    def matmul(self, h: Tensor) -> Tensor:
        """h W^T for every task: h [T, N, in] -> [T, N, out]."""
        if self.base.dim() == 2:
            out = torch.matmul(h, self.base.t())
        else:
            out = torch.bmm(h, self.base.transpose(1, 2))
        if self.u is not None:
            out = torch.baddbmm(out, torch.bmm(h, self.v.transpose(1, 2)), self.u)
        for index, delta in self.corrections:
            out = out.index_add(0, index, torch.bmm(h[index], delta.transpose(1, 2)))
        return out

    def add_outer(self, u: Tensor, v: Tensor) -> LowRankWeight:
        """W + u^T v with u [T, N, out], v [T, N, in]."""
        if self.u is not None:
            u, v = torch.cat([self.u, u], dim=1), torch.cat([self.v, v], dim=1)
        return self._replace(u=u, v=v)

    def add_dense(self, index: Tensor, delta: Tensor) -> LowRankWeight:
        """W + delta on the tasks in `index` only."""
        return self._replace(corrections=(*self.corrections, (index, delta)))

    def dense(self, num_tasks: int) -> Tensor:
        """The full per-task weights [T, out, in]."""
        weight = self.base.expand(num_tasks, *self.base.shape) if self.base.dim() == 2 else self.base
        if self.u is not None:
            weight = weight + torch.bmm(self.u.transpose(1, 2), self.v)
        for index, delta in self.corrections:
            weight = weight.index_add(0, index, delta)
        return weight


Params = dict[str, Tensor | LowRankWeight]  # per-task parameters, leading task dimension [T, ...]
Tape = dict[str, tuple[Tensor, Tensor]]  # low-rank weight name -> (its layer's input, output)


def low_rank_pays(out_features: int, in_features: int, rank: int) -> bool:
    """Whether a rank-`rank` factorisation holds fewer numbers than the dense [out, in] weight."""
    return rank * (out_features + in_features) < out_features * in_features
