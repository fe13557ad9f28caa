"""Task-aware modulation of hidden pre-activations (paper §3.2; spec §2.3).

tau is computed once per task from the support set and broadcast over the task's points. Each
modulation maps a pre-activation h [..., N, width] and tau [..., tau_size] to a modulated h.
"""

from __future__ import annotations

import torch
from torch import Tensor

from mumo.errors import ConfigError


class Modulation:
    """Base class: how tau modulates a layer's units."""

    name: str = ""

    def tau_size(self, width: int) -> int:
        return width

    def __call__(self, h: Tensor, tau: Tensor) -> Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class SoftmaxAttention(Modulation):
    """h * softmax(tau), normalised across the units of the layer (spec §5.16: no temperature)."""

    name = "softmax"

    def __call__(self, h: Tensor, tau: Tensor) -> Tensor:
        return h * torch.softmax(tau, dim=-1).unsqueeze(-2)


class SigmoidAttention(Modulation):
    """h * sigmoid(tau), per unit."""

    name = "sigmoid"

    def __call__(self, h: Tensor, tau: Tensor) -> Tensor:
        return h * torch.sigmoid(tau).unsqueeze(-2)


class FiLM(Modulation):
    """Feature-wise linear modulation with a residual scale: h * (1 + gamma) + beta."""

    name = "film"

    def tau_size(self, width: int) -> int:
        return 2 * width

    def __call__(self, h: Tensor, tau: Tensor) -> Tensor:
        gamma, beta = tau.unsqueeze(-2).chunk(2, dim=-1)
        return h * (1 + gamma) + beta


MODULATIONS: dict[str, type[Modulation] | None] = {
    "none": None,
    "softmax": SoftmaxAttention,
    "sigmoid": SigmoidAttention,
    "film": FiLM,
}


def get_modulation(name: str) -> Modulation | None:
    """The modulation called `name` (None for plain MAML); a ConfigError for an unknown name."""
    if name not in MODULATIONS:
        raise ConfigError("modulation", f"unknown modulation '{name}' (choose from {', '.join(MODULATIONS)})")
    cls = MODULATIONS[name]
    return cls() if cls is not None else None
