"""The regression meta-model: base MLP(s) theta plus the model-based meta-learner (paper §3).

`MetaModel` exposes what an engine needs (`mumo.core.engines.AdaptableModel`), for all methods:
- `condition(episode)`: what is computed once per task and never adapted (tau from the support
  set for MuMoMAML, the per-mode bias transformation for Multi-MAML);
- `initial_params(episode, rank)`: each task's starting fast weights theta_0, with a task
  dimension (large weights as `LowRankWeight`s when the inner loop will add at most `rank` outer
  products to them);
- `predict(x, params, condition, tape)`: the batched forward pass;
- `task_net(mode)`: the nn.Module a task adapts (for the per-task learn2learn engine).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from mumo.core.episode import Episode
from mumo.core.heads import ModulationHeads
from mumo.core.low_rank import LowRankWeight, Params, Tape, low_rank_pays
from mumo.core.mlp import MLP
from mumo.core.modulation import Condition, get_modulation
from mumo.regression.encoder import LSTMTaskEncoder


class MetaModel(nn.Module):
    """MAML (modulation 'none'), MuMoMAML (softmax / sigmoid / film) or Multi-MAML (per_mode_nets).

    Args:
        modulation: 'none', 'softmax', 'sigmoid' or 'film'.
        modulated_layers: hidden layers (0-based) that receive a tau; None means all of them.
        bias_transform: size of the adapted bias-transformation vector (MAML; 0 = off).
        per_mode_nets: Multi-MAML (GT) with this many modes: one base net per mode, picked by the
            task's ground-truth mode label; each mode also gets a non-adapted N(0, 1)
            bias-transformation row of size `bias_transform`. 0 = off.
    """

    def __init__(
        self,
        in_features: int = 1,
        out_features: int = 1,
        hidden_sizes: Sequence[int] = (100, 100, 100),
        modulation: str = "film",
        modulated_layers: Sequence[int] | None = None,
        bias_transform: int = 0,
        per_mode_nets: int = 0,
        encoder_hidden_size: int = 40,
        encoder_layers: int = 2,
        init_std: float = 0.01,
    ) -> None:
        super().__init__()
        hidden_sizes = list(hidden_sizes)
        modulator = get_modulation(modulation)
        if modulated_layers is None:
            modulated_layers = range(len(hidden_sizes)) if modulator is not None else []
        modulated_layers = sorted(set(modulated_layers))
        self.modulation = modulation
        self.per_mode_nets = per_mode_nets
        num_nets = per_mode_nets or 1
        context = bias_transform if per_mode_nets else 0
        self.nets = nn.ModuleList(
            MLP(
                in_features,
                hidden_sizes,
                out_features,
                modulator,
                modulated_layers,
                bias_transform=0 if per_mode_nets else bias_transform,
                context_size=context,
                init_std=init_std,
            )
            for _ in range(num_nets)
        )
        self.mode_bias = nn.Parameter(torch.randn(per_mode_nets, context)) if context else None
        if modulator is not None:
            self.encoder = LSTMTaskEncoder(in_features + out_features, encoder_hidden_size, encoder_layers)
            self.heads = ModulationHeads(self.encoder.embedding_size, self.nets[0].tau_sizes())
        else:
            self.encoder, self.heads = None, None

    @property
    def method(self) -> str:
        if self.per_mode_nets:
            return "multi_maml"
        return "maml" if self.encoder is None else "mumomaml"

    def base_parameters(self) -> list[nn.Parameter]:
        """theta: everything the inner loop adapts, plus Multi-MAML's per-mode bias vectors."""
        extra = [self.mode_bias] if self.mode_bias is not None else []
        return [*self.nets.parameters(), *extra]

    def encoder_parameters(self) -> list[nn.Parameter]:
        """The model-based meta-learner: task encoder and modulation heads."""
        if self.encoder is None:
            return []
        return [*self.encoder.parameters(), *self.heads.parameters()]

    def embed(self, episode: Episode) -> Tensor:
        """Task embeddings [T, E] from the support set (MuMoMAML only)."""
        if self.encoder is None:
            raise ValueError(f"{self.method} has no task encoder")
        return self.encoder(episode.support_x, episode.support_y)

    def taus(self, episode: Episode) -> tuple[Tensor, ...]:
        """tau for every modulated layer, [T, tau_size] each (paper Eq. 1: from the support set)."""
        return self.heads(self.embed(episode))

    def condition(self, episode: Episode) -> Condition:
        """The modulation factors of tau, computed once per task, and any fixed per-task context."""
        factors = None
        if self.encoder is not None:
            modulation = self.nets[0].modulation
            factors = tuple(modulation.factors(tau) for tau in self.taus(episode))
        context = self.mode_bias[episode.mode] if self.mode_bias is not None else None
        return Condition(factors, context)

    def initial_params(self, episode: Episode, rank: int = 0) -> Params:
        """theta_0 for every task, with a leading task dimension.

        With `rank > 0`, each weight matrix for which a rank-`rank` update is cheaper than a dense
        per-task copy is returned as a `LowRankWeight` (`rank` = support points x inner steps).
        """
        per_mode = [dict(net.named_parameters()) for net in self.nets]
        prior: Params = {}
        for name, p in per_mode[0].items():
            # Multi-MAML starts each task from its mode's net ([T, ...]); the others share one net.
            start = torch.stack([net[name] for net in per_mode])[episode.mode] if self.per_mode_nets else p
            if p.dim() == 2 and rank > 0 and low_rank_pays(*p.shape, rank):
                prior[name] = LowRankWeight(start)
            else:
                prior[name] = start if self.per_mode_nets else p.expand(episode.num_tasks, *p.shape)
        return prior

    def predict(self, x: Tensor, params: Params, condition: Condition, tape: Tape | None = None) -> Tensor:
        """Batched forward pass of all tasks: x [T, N, d_in] -> [T, N, d_out]."""
        return self.nets[0](x, condition, params=params, tape=tape)

    def task_net(self, mode: int) -> MLP:
        """The base network that a task of this mode adapts."""
        return self.nets[mode if self.per_mode_nets else 0]
