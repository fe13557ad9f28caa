"""The RL meta-learner's networks: a Gaussian MLP policy whose hidden units the task's tau
modulates, and the task encoder that reads a task's first rollouts (paper §3.2, §4.2).

The policy's parameters are a dict that may carry a leading task dimension, as the regression
network's (`mumo.core.mlp`): every task of a meta-batch adapts its own copy, and one forward pass
evaluates all of them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from mumo.core.heads import ModulationHeads
from mumo.core.low_rank import Params
from mumo.core.mlp import MLP
from mumo.core.modulation import Condition, Factors, get_modulation


class GaussianPolicy(nn.Module):
    """pi(a | s) = N(mu(s), diag(exp(log_std))^2), sampled without squashing.

    mu is a tanh MLP (Glorot-uniform weights, zero biases) whose hidden pre-activations are
    modulated per task; the output layer and the state-independent `log_std` (initialised to 0)
    are never modulated. Both are adapted in the inner loop.
    """

    def __init__(self, observation_size: int, action_size: int, hidden_sizes: Sequence[int] = (64, 64),
                 modulation: str = "film") -> None:
        super().__init__()
        modulator = get_modulation(modulation)
        layers = range(len(hidden_sizes)) if modulator is not None else ()
        self.mean = MLP(observation_size, hidden_sizes, action_size, modulation=modulator, modulated_layers=layers,
                        activation="tanh", init="xavier")
        self.log_std = nn.Parameter(torch.zeros(action_size))

    def tau_sizes(self) -> list[int]:
        return self.mean.tau_sizes()

    def initial_params(self, tasks: int) -> Params:
        """theta with a task dimension: every task's fast weights start as views of theta."""
        named = {name: p for name, p in self.mean.named_parameters()} | {"log_std": self.log_std}
        return {name: p.expand(tasks, *p.shape) for name, p in named.items()}

    def forward(self, observations: Tensor, params: Params, factors: Factors | None = None) -> tuple[Tensor, Tensor]:
        """Means [T, N, A] and log-stds [T, 1, A] for observations [T, N, d]."""
        return self.mean(observations, Condition(factors), params=params), params["log_std"].unsqueeze(-2)


def log_prob(actions: Tensor, mean: Tensor, log_std: Tensor) -> Tensor:
    """Diagonal-Gaussian log-density, summed over action dimensions: [..., A] -> [...]."""
    z = (actions - mean) * torch.exp(-log_std)
    return -(0.5 * z.pow(2) + log_std + 0.5 * math.log(2 * math.pi)).sum(-1)


def kl_divergence(mean_p: Tensor, log_std_p: Tensor, mean_q: Tensor, log_std_q: Tensor) -> Tensor:
    """KL(p || q) of diagonal Gaussians, summed over action dimensions: [..., A] -> [...]."""
    var_ratio = torch.exp(2 * (log_std_p - log_std_q))
    return (log_std_q - log_std_p + 0.5 * (var_ratio + ((mean_p - mean_q) * torch.exp(-log_std_q)).pow(2)) - 0.5).sum(-1)


class RolloutEncoder(nn.Module):
    """A task's embedding from its first-stage rollouts, each step (s_t, a_t, r_t).

    A GRU reads every rollout over all its steps; an MLP maps each rollout's final state; the
    mean over rollouts goes through a second MLP to the embedding (64-d). The original code fed
    the encoder only the first 100 transitions of a task, by a bug; this reads all of them.
    """

    def __init__(self, step_size: int, hidden_size: int = 64) -> None:
        super().__init__()
        self.gru = nn.GRU(step_size, hidden_size, batch_first=True)
        self.per_rollout = nn.Sequential(nn.Linear(hidden_size, hidden_size), nn.ReLU(), nn.Linear(hidden_size, hidden_size))
        self.after_mean = nn.Sequential(nn.Linear(hidden_size, hidden_size), nn.ReLU(), nn.Linear(hidden_size, hidden_size))
        self.embedding_size = hidden_size

    def forward(self, steps: Tensor) -> Tensor:
        """steps [T, R, H, F] -> embeddings [T, hidden_size]."""
        tasks, rollouts = steps.shape[:2]
        _, final = self.gru(steps.flatten(0, 1))
        return self.after_mean(self.per_rollout(final[-1]).view(tasks, rollouts, -1).mean(1))


class MetaPolicy(nn.Module):
    """theta (the policy) plus, for MuMoMAML, the encoder and the heads that turn its embedding
    into tau; `modulation="none"` is MAML; `per_mode_nets=M` is Multi-MAML (GT): one policy per
    mode, the task's own picked by its true mode label."""

    def __init__(self, observation_size: int, action_size: int, hidden_sizes: Sequence[int] = (64, 64),
                 modulation: str = "film", per_mode_nets: int = 0, encoder_size: int = 64) -> None:
        super().__init__()
        self.modulation, self.per_mode_nets = modulation, per_mode_nets
        self.observation_size, self.action_size = observation_size, action_size
        self.policies = nn.ModuleList(GaussianPolicy(observation_size, action_size, hidden_sizes, modulation)
                                      for _ in range(per_mode_nets or 1))
        self.policy = self.policies[0]  # every policy has this structure; forward passes take explicit params
        self.encoder = self.heads = None
        if get_modulation(modulation) is not None:
            self.encoder = RolloutEncoder(observation_size + action_size + 1, encoder_size)
            self.heads = ModulationHeads(encoder_size, self.policy.tau_sizes())

    @property
    def method(self) -> str:
        return "multi_maml" if self.per_mode_nets else "maml" if self.encoder is None else "mumomaml"

    def initial_params(self, mode: Tensor) -> Params:
        """theta_0 of every task [T, ...]: the policy's parameters, or (Multi-MAML) those of the
        policy of the task's mode."""
        if not self.per_mode_nets:
            return self.policy.initial_params(len(mode))
        per_mode = [policy.initial_params(1) for policy in self.policies]
        return {name: torch.cat([p[name] for p in per_mode])[mode] for name in per_mode[0]}

    def embed(self, steps: Tensor) -> Tensor:
        return self.encoder(steps)

    def condition(self, steps: Tensor) -> Factors | None:
        """Per-layer modulation factors from the first-stage rollouts [T, R, H, s + a + 1]; None for MAML."""
        if self.encoder is None:
            return None
        modulation = self.policy.mean.modulation
        return tuple(modulation.factors(tau) for tau in self.heads(self.embed(steps)))

    def base_parameters(self) -> list[nn.Parameter]:
        return list(self.policies.parameters())

    def encoder_parameters(self) -> list[nn.Parameter]:
        return [] if self.encoder is None else [*self.encoder.parameters(), *self.heads.parameters()]
