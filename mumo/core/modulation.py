"""Task-aware modulation of hidden pre-activations (paper §3.2).

tau is computed once per task from the support set. Each modulation turns it, once per task, into
factors that broadcast over the task's points (`factors`), and applies them to a pre-activation
h [..., N, width] at every forward pass of the inner loop (`__call__`).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

Factors = tuple[tuple[Tensor, ...], ...]  # per modulated layer, what `Modulation.factors` made of tau


class Condition(NamedTuple):
    """Per-task quantities fixed during adaptation; leading task dimension [T, ...].

    `factors` holds, per modulated layer, what the modulation computed from tau once per task
    (e.g. FiLM's 1 + gamma and beta); `context` is a per-task input vector that is not adapted
    (Multi-MAML's per-mode bias transformation). Empty for MAML.
    """

    factors: Factors | None = None
    context: Tensor | None = None

    def select(self, index: int | slice | Tensor) -> Condition:
        return Condition(
            None if self.factors is None else tuple(tuple(f[index] for f in layer) for layer in self.factors),
            None if self.context is None else self.context[index],
        )


class Modulation:
    """Base class: how tau modulates a layer's units."""

    name: str = ""

    def tau_size(self, width: int) -> int:
        return width

    def factors(self, tau: Tensor) -> tuple[Tensor, ...]:
        """tau [..., tau_size] -> per-task factors, each [..., 1, width]."""
        raise NotImplementedError

    def __call__(self, h: Tensor, factors: tuple[Tensor, ...]) -> Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class SoftmaxAttention(Modulation):
    """h * softmax(tau), normalised across the units of the layer (no temperature, as in the original code)."""

    name = "softmax"

    def factors(self, tau: Tensor) -> tuple[Tensor, ...]:
        return (torch.softmax(tau, dim=-1).unsqueeze(-2),)

    def __call__(self, h: Tensor, factors: tuple[Tensor, ...]) -> Tensor:
        return h * factors[0]


class SigmoidAttention(Modulation):
    """h * sigmoid(tau), per unit."""

    name = "sigmoid"

    def factors(self, tau: Tensor) -> tuple[Tensor, ...]:
        return (torch.sigmoid(tau).unsqueeze(-2),)

    def __call__(self, h: Tensor, factors: tuple[Tensor, ...]) -> Tensor:
        return h * factors[0]


class FiLM(Modulation):
    """Feature-wise linear modulation with a residual scale: h * (1 + gamma) + beta."""

    name = "film"

    def tau_size(self, width: int) -> int:
        return 2 * width

    def factors(self, tau: Tensor) -> tuple[Tensor, ...]:
        gamma, beta = tau.unsqueeze(-2).chunk(2, dim=-1)
        return 1 + gamma, beta

    def __call__(self, h: Tensor, factors: tuple[Tensor, ...]) -> Tensor:
        scale, shift = factors
        return torch.addcmul(shift, h, scale)


MODULATIONS: dict[str, type[Modulation] | None] = {
    "none": None,
    "softmax": SoftmaxAttention,
    "sigmoid": SigmoidAttention,
    "film": FiLM,
}


def get_modulation(name: str) -> Modulation | None:
    """The modulation called `name` (None for plain MAML); names are checked by the config schema."""
    cls = MODULATIONS[name]
    return cls() if cls is not None else None
