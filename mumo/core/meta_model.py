"""The meta-learned model of a supervised family: base network(s) theta plus the model-based
meta-learner (task encoder and modulation heads), paper §3.

`MetaModel` exposes what an engine needs (`mumo.core.engines.AdaptableModel`), for all methods:
- `condition(episode)`: what is computed once per task and never adapted (tau from the support
  set for MuMoMAML, the per-mode bias transformation for Multi-MAML);
- `initial_params(episode, rank)`: each task's starting fast weights theta_0, with a task
  dimension (large linear weights as `LowRankWeight`s when the net supports them and the inner
  loop will add at most `rank` outer products to them);
- `predict(x, params, condition, tape)`: the batched forward pass;
- `task_net(mode)`: the nn.Module a task adapts (for the per-task learn2learn engine).

A family builds its nets, encoder and heads and hands them over (`mumo.regression.model`,
`mumo.classification.model`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from mumo.core.episode import Episode
from mumo.core.heads import ModulationHeads
from mumo.core.low_rank import LowRankWeight, Params, Tape, low_rank_pays
from mumo.core.modulation import Condition


class MetaModel(nn.Module):
    """MAML (no encoder), MuMoMAML (encoder + heads) or Multi-MAML (one net per mode).

    Args:
        nets: the base network, or one per mode (Multi-MAML: picked by the true mode label). Each
            has `modulation` and `tau_sizes()`; `supports_low_rank` if its forward records
            low-rank layers in a tape (the MLP); optionally `fixed_prior`, the names of
            parameters that the inner loop adapts from a fixed start that is never meta-learned.
        modulation: the modulation's name ('none' for MAML and Multi-MAML).
        encoder: support set (x, y) [T, ...] -> task embedding [T, E], with `embedding_size`; None
            for MAML and Multi-MAML.
        mode_bias: Multi-MAML's non-adapted per-mode input vectors [modes, size], or None.
        per_mode: whether `nets` holds one net per mode (Multi-MAML).
    """

    def __init__(self, nets: Sequence[nn.Module], modulation: str, encoder: nn.Module | None = None,
                 mode_bias: Tensor | None = None, per_mode: bool = False) -> None:
        super().__init__()
        self.nets = nn.ModuleList(nets)
        self.modulation = modulation
        self.per_mode_nets = len(nets) if per_mode else 0
        self.mode_bias = nn.Parameter(mode_bias) if mode_bias is not None else None
        self.encoder = encoder
        self.heads = ModulationHeads(encoder.embedding_size, self.nets[0].tau_sizes()) if encoder is not None else None

    @property
    def method(self) -> str:
        if self.per_mode_nets:
            return "multi_maml"
        return "maml" if self.encoder is None else "mumomaml"

    def base_parameters(self) -> list[nn.Parameter]:
        """theta: what the inner loop adapts and the outer loop learns, plus Multi-MAML's per-mode
        bias vectors."""
        extra = [self.mode_bias] if self.mode_bias is not None else []
        fixed = {id(p) for p in self.fixed_parameters()}
        return [*(p for p in self.nets.parameters() if id(p) not in fixed), *extra]

    def fixed_parameters(self) -> list[nn.Parameter]:
        """What the inner loop adapts from a fixed start that the outer loop never changes."""
        return [p for net in self.nets for name, p in net.named_parameters() if name in getattr(net, "fixed_prior", ())]

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
            low_rank = rank > 0 and getattr(self.nets[0], "supports_low_rank", False)
            if p.dim() == 2 and low_rank and low_rank_pays(*p.shape, rank):
                prior[name] = LowRankWeight(start)
            else:
                prior[name] = start if self.per_mode_nets else p.expand(episode.num_tasks, *p.shape)
        return prior

    def predict(self, x: Tensor, params: Params, condition: Condition, tape: Tape | None = None) -> Tensor:
        """Batched forward pass of all tasks: x [T, N, ...] -> [T, N, d_out]."""
        return self.nets[0](x, condition, params=params, tape=tape)

    def task_net(self, mode: int) -> nn.Module:
        """The base network that a task of this mode adapts."""
        return self.nets[mode if self.per_mode_nets else 0]
