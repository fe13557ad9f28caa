"""What every meta-RL environment of mumo provides, and the multimodal task distribution they share.

A task is a small parameter vector (a goal [2] in the plane, a target speed [1], a target x [1]):
`TaskBatch` holds a meta-batch of them with their mode labels. Every environment draws them from
a Gaussian mixture with equally likely modes (`GaussianModes`: centre of the mode + N(0, sigma^2)).

An environment module (`mumo.rl.navigation`, `mumo.rl.half_cheetah`) defines a standard
gymnasium environment for one task and an `RLEnvironment`: the task distribution, a batched
simulator that steps every (task, rollout) pair of a meta-batch at once, and its own figure of
test rollouts. The rest of the RL family (sampling, ProMP, evaluation) only sees that interface.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Protocol

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor


class TaskBatch(NamedTuple):
    """Task parameters [T, P] and mode labels [T] (a NamedTuple, so that Lightning moves it between
    devices as a collection)."""

    params: Tensor
    mode: Tensor

    @property
    def num_tasks(self) -> int:
        return len(self.params)

    def select(self, index: slice | Tensor) -> TaskBatch:
        return TaskBatch(self.params[index], self.mode[index])


@dataclass(frozen=True)
class GaussianModes:
    """Tasks c_m + N(0, noise_std^2 I) around equally likely mode centres c_m.

    Args:
        centres: [modes, P] mode centres.
        noise_std: std of every task-parameter component around its centre.
        unit: appended to the centres in the mode names ('m/s').
    """

    centres: tuple[tuple[float, ...], ...]
    noise_std: float = 1.0
    unit: str = ""

    @property
    def modes(self) -> int:
        return len(self.centres)

    def sample(self, tasks_per_mode: int, generator: torch.Generator) -> TaskBatch:
        """A balanced batch, `tasks_per_mode` tasks of each mode in mode order, drawn in one pass."""
        mode = torch.arange(self.modes).repeat_interleave(tasks_per_mode)
        centres = torch.tensor(self.centres, dtype=torch.float32)
        noise = torch.randn(len(mode), centres.shape[1], generator=generator)
        return TaskBatch(centres[mode] + self.noise_std * noise, mode)

    def fixed_set(self, tasks_per_mode: int, seed: int) -> TaskBatch:
        """A task set that depends only on (`tasks_per_mode`, `seed`) and the distribution."""
        return self.sample(tasks_per_mode, torch.Generator().manual_seed(seed))

    @property
    def mode_names(self) -> list[str]:
        """A mode's name is its centre: '(-5,-5)', '+1.5 m/s'."""
        if len(self.centres[0]) == 1:
            return [f"{c[0]:+g}{' ' + self.unit if self.unit else ''}" for c in self.centres]
        return ["(" + ",".join(f"{x:g}" for x in c) + ")" for c in self.centres]

    def density(self, points: Tensor) -> Tensor:
        """The mixture's density at points [..., P]."""
        centres = torch.tensor(self.centres, dtype=points.dtype)
        d2 = (points.unsqueeze(-2) - centres).pow(2).sum(-1)
        var, dim = self.noise_std**2, centres.shape[1]
        return torch.exp(-d2 / (2 * var)).mean(-1) / (2 * torch.pi * var) ** (dim / 2)


class BatchedEnv(Protocol):
    """N environments stepped together; observations and rewards are torch tensors."""

    def reset(self, generator: torch.Generator | None = None) -> Tensor:
        """Start every episode from the reset distribution: observations [N, d]."""

    def step(self, action: Tensor) -> tuple[Tensor, Tensor]:
        """(next observations [N, d], rewards [N]) for environment-scale actions [N, A]."""


class RLEnvironment(Protocol):
    """What the RL family needs from an environment (see the module docstring).

    Attributes:
        name: the task's name in results.json and the report ('navigation', 'cheetah_speed').
        observation_size, action_size: of the policy's input and output.
        action_limit: the environment's action box [-limit, limit]^A (see `policy_to_env`).
        tasks: the task distribution.
    """

    name: str
    observation_size: int
    action_size: int
    action_limit: float
    tasks: GaussianModes

    def batched(self, params: Tensor, threads: int) -> BatchedEnv:
        """A simulator of one environment per row of task parameters [N, P]."""

    def plot_rollouts(self, tasks: TaskBatch, observations: Sequence[Tensor], stage_names: Sequence[str],
                      path: Path) -> None:
        """The environment's figure of test tasks: one rollout's observations [T, H, d] per stage."""


def policy_to_env(action: Tensor | np.ndarray, policy_scale: float, limit: float):
    """The action mapping of the original code: the policy acts in [-policy_scale, policy_scale]
    per axis, the environment receives that box mapped linearly onto [-limit, limit], clipped."""
    scaled = action * (limit / policy_scale)
    return scaled.clamp(-limit, limit) if isinstance(scaled, Tensor) else np.clip(scaled, -limit, limit)


class PolicyScaleActions(gym.ActionWrapper):
    """Lets a policy act in [-policy_scale, policy_scale]^d of any gymnasium environment with a
    symmetric action box (see `policy_to_env`)."""

    def __init__(self, env: gym.Env, policy_scale: float = 10.0) -> None:
        super().__init__(env)
        self.policy_scale = policy_scale
        self.action_space = gym.spaces.Box(-policy_scale, policy_scale, env.action_space.shape, np.float64)

    def action(self, action: np.ndarray) -> np.ndarray:
        return policy_to_env(np.asarray(action, dtype=np.float64), self.policy_scale, float(self.env.action_space.high[0]))
