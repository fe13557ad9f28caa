"""The base ("task") network f(x; theta), written once for shared and per-task weights.

The functional base-network interface of the core: `forward(x, condition, params, tape)`, where
`condition` carries what tau modulates (per hidden unit here: factors broadcast as [T, 1, width])
and `params` the per-task fast weights. `forward` takes an optional `params` dict. Without it the module's own parameters are used (this
is how learn2learn's clones call it). With it, every tensor may carry a leading task dimension
[T, ...] and x is [T, N, d_in]: all tasks of a meta-batch run as batched matmuls. A weight may
also be a `LowRankWeight` (the prior plus low-rank per-task updates); `tape` then records each
such layer's input and output, from which the inner loop forms the weight's gradient.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mumo.core.low_rank import LowRankWeight, Params, Tape
from mumo.core.modulation import Condition, Modulation

ACTIVATIONS = {"relu": torch.relu, "tanh": torch.tanh}


def linear(h: Tensor, weight: Tensor | LowRankWeight, bias: Tensor) -> Tensor:
    """h W^T + b for shared ([out, in]), per-task ([T, out, in]) or low-rank per-task weights."""
    if isinstance(weight, LowRankWeight):
        return weight.matmul(h) + bias.unsqueeze(-2)
    if weight.dim() == 2:
        return F.linear(h, weight, bias)
    return torch.baddbmm(bias.unsqueeze(-2), h, weight.transpose(-1, -2))


def concat_bias_transform(x: Tensor, bias_transform: Tensor) -> Tensor:
    """Append a per-task vector to every input row (Finn et al.'s bias transformation)."""
    bt = bias_transform.unsqueeze(-2).expand(*x.shape[:-1], bias_transform.shape[-1])
    return torch.cat([x, bt], dim=-1)


class MLP(nn.Module):
    """MLP whose hidden pre-activations can be modulated per task (ReLU or tanh hidden units).

    `forward` takes a `Condition`: for each layer in `modulated_layers`, the factors that
    `modulation` computed from the task's tau (`Modulation.factors`), and an optional context.

    Weights are drawn from N(0, init_std^2) (`init="normal"`, the regression networks) or
    Glorot-uniform (`init="xavier"`, the RL policy); biases are zero. With
    `bias_transform > 0` a learnable zero-initialised vector of that size is appended to the input
    and adapted in the inner loop like any other weight (the MAML baseline).
    `context_size > 0` widens the input for a vector that the caller passes per task and that is
    *not* adapted (Multi-MAML's bias transformation).
    """

    supports_low_rank = True  # its forward records LowRankWeight layers in the tape

    def __init__(
        self,
        in_features: int = 1,
        hidden_sizes: Sequence[int] = (100, 100, 100),
        out_features: int = 1,
        modulation: Modulation | None = None,
        modulated_layers: Sequence[int] = (),
        bias_transform: int = 0,
        context_size: int = 0,
        init_std: float = 0.01,
        activation: str = "relu",
        init: str = "normal",
    ) -> None:
        super().__init__()
        sizes = [in_features + bias_transform + context_size, *hidden_sizes, out_features]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        for layer in self.layers:
            if init == "xavier":
                nn.init.xavier_uniform_(layer.weight)
            else:
                nn.init.normal_(layer.weight, std=init_std)
            nn.init.zeros_(layer.bias)
        self.activation = ACTIVATIONS[activation]
        self.bias_transform = nn.Parameter(torch.zeros(bias_transform)) if bias_transform else None
        self.hidden_sizes = list(hidden_sizes)
        self.modulation = modulation
        self.modulated_layers = list(modulated_layers) if modulation is not None else []
        self._names = [(f"layers.{i}.weight", f"layers.{i}.bias") for i in range(len(self.layers))]

    def tau_sizes(self) -> list[int]:
        """Size of tau for each modulated layer, in `modulated_layers` order."""
        assert self.modulation is not None or not self.modulated_layers
        return [self.modulation.tau_size(self.hidden_sizes[i]) for i in self.modulated_layers]

    def forward(
        self,
        x: Tensor,
        condition: Condition | None = None,
        params: Params | None = None,
        tape: Tape | None = None,
    ) -> Tensor:
        """x [T, N, d_in] (or [N, d_in] with shared weights) -> [T, N, d_out]."""
        p = dict(self.named_parameters()) if params is None else params
        condition = condition or Condition()
        if self.bias_transform is not None:
            x = concat_bias_transform(x, p["bias_transform"])
        if condition.context is not None:
            x = concat_bias_transform(x, condition.context)
        factors = condition.factors
        factors_of = dict(zip(self.modulated_layers, factors)) if factors is not None else {}
        h = x
        for i, (w, b) in enumerate(self._names):
            a, h = h, linear(h, p[w], p[b])
            if tape is not None and isinstance(p[w], LowRankWeight):
                tape[w] = (a, h)
            if i < len(self.hidden_sizes):
                if i in factors_of:
                    h = self.modulation(h, factors_of[i])
                h = self.activation(h)
        return h
