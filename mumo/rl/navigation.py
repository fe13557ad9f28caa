"""2-D point-mass navigation with momentum and a multimodal goal distribution (paper §4.2,
Figures 3a and 3d).

A task is a goal g in the plane. The agent observes its position and velocity [p, v], adds an
action a (clipped to [-0.1, 0.1]^2) to its velocity, moves by the new velocity, and receives
-||p - g|| for the position it reached. Episodes last `horizon` steps and never end early.
Goals are g = c + N(0, sigma^2 I) around one of the mode centres c.

Two implementations of the same dynamics: `PointNavigationEnv`, a standard gymnasium environment
(registered as `mumo/PointNavigation-v0`), and `BatchedNavigation`, which steps every (task,
rollout) pair of a meta-batch in one tensor operation for training.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor

MAX_ACCEL = 0.1  # |a| per axis, in environment units
RADIUS = 5.0  # mode centres: (±5, ±5) for 2 and 4 modes, a hexagon of radius 5 for 6


def mode_centres(modes: int) -> Tensor:
    """Goal-mode centres [modes, 2]: 2 (the paper's bimodal), 4 (square) or 6 (hexagon)."""
    if modes == 2:
        return torch.tensor([[-RADIUS, -RADIUS], [RADIUS, RADIUS]])
    if modes == 4:
        return torch.tensor([[-RADIUS, -RADIUS], [RADIUS, -RADIUS], [-RADIUS, RADIUS], [RADIUS, RADIUS]])
    if modes == 6:
        angles = torch.arange(6, dtype=torch.float64) * math.pi / 3
        return (RADIUS * torch.stack([angles.cos(), angles.sin()], dim=1)).float()
    raise ValueError(f"modes must be 2, 4 or 6 (got {modes})")


class GoalBatch(NamedTuple):
    """Navigation tasks: goals [T, 2] and their mode labels [T] (a NamedTuple, so that Lightning
    moves it between devices as a collection)."""

    goals: Tensor
    mode: Tensor

    @property
    def num_tasks(self) -> int:
        return len(self.goals)

    def select(self, index: slice | Tensor) -> GoalBatch:
        return GoalBatch(self.goals[index], self.mode[index])


@dataclass(frozen=True)
class GoalDistribution:
    """Goals around `modes` centres with isotropic Gaussian noise of std `noise_std`."""

    modes: int = 2
    noise_std: float = 1.0

    def sample(self, tasks_per_mode: int, generator: torch.Generator) -> GoalBatch:
        """A balanced batch: goals [M * n, 2] and mode labels [M * n], `n` tasks of each mode in
        mode order, drawn in one pass from `generator`."""
        mode = torch.arange(self.modes).repeat_interleave(tasks_per_mode)
        noise = torch.randn(len(mode), 2, generator=generator)
        return GoalBatch(mode_centres(self.modes)[mode] + self.noise_std * noise, mode)

    def fixed_set(self, tasks_per_mode: int, seed: int) -> GoalBatch:
        """A task set that depends only on (`tasks_per_mode`, `seed`) and the distribution."""
        return self.sample(tasks_per_mode, torch.Generator().manual_seed(seed))

    @property
    def mode_names(self) -> list[str]:
        """A mode's name is its centre: '(-5,-5)'."""
        return [f"({x:g},{y:g})" for x, y in mode_centres(self.modes).tolist()]


def policy_to_env(action: Tensor | np.ndarray, policy_scale: float, limit: float = MAX_ACCEL):
    """The action mapping of the original code: the policy acts in [-policy_scale, policy_scale]
    per axis, the environment receives that box mapped linearly onto [-limit, limit], clipped."""
    scaled = action * (limit / policy_scale)
    return scaled.clamp(-limit, limit) if isinstance(scaled, Tensor) else np.clip(scaled, -limit, limit)


class PolicyScaleActions(gym.ActionWrapper):
    """Lets a policy act in [-policy_scale, policy_scale]^d (see `policy_to_env`)."""

    def __init__(self, env: gym.Env, policy_scale: float = 10.0) -> None:
        super().__init__(env)
        self.policy_scale = policy_scale
        self.action_space = gym.spaces.Box(-policy_scale, policy_scale, env.action_space.shape, np.float64)

    def action(self, action: np.ndarray) -> np.ndarray:
        return policy_to_env(np.asarray(action, dtype=np.float64), self.policy_scale, float(self.env.action_space.high[0]))


class PointNavigationEnv(gym.Env):
    """One navigation task as a gymnasium environment.

    The task is set with `set_task(goal)` (or `reset(options={"goal": goal})`), read with
    `get_task()`; `sample_tasks(n)` draws goals from the environment's goal distribution.
    """

    metadata = {"render_modes": []}

    def __init__(self, modes: int = 2, noise_std: float = 1.0, goal: tuple[float, float] | None = None) -> None:
        self.goals = GoalDistribution(modes, noise_std)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (4,), np.float64)
        self.action_space = gym.spaces.Box(-MAX_ACCEL, MAX_ACCEL, (2,), np.float64)
        self.goal = np.zeros(2) if goal is None else np.asarray(goal, dtype=np.float64)
        self.position, self.velocity = np.zeros(2), np.zeros(2)

    def sample_tasks(self, n: int) -> list[np.ndarray]:
        """`n` goals of the goal distribution, modes balanced (n must be a multiple of modes)."""
        generator = torch.Generator().manual_seed(int(self.np_random.integers(2**31)))
        goals, _ = self.goals.sample(n // self.goals.modes, generator)
        return list(goals.double().numpy())

    def set_task(self, goal) -> None:
        self.goal = np.asarray(goal, dtype=np.float64)

    def get_task(self) -> np.ndarray:
        return self.goal.copy()

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if options and "goal" in options:
            self.set_task(options["goal"])
        self.position = self.np_random.uniform(-0.2, 0.2, 2)
        self.velocity = self.np_random.uniform(-0.1, 0.1, 2)
        return self._observation(), {"goal": self.get_task()}

    def step(self, action):
        self.velocity = self.velocity + np.clip(action, -MAX_ACCEL, MAX_ACCEL)
        self.position = self.position + self.velocity
        distance = float(np.linalg.norm(self.position - self.goal))
        return self._observation(), -distance, False, False, {"distance": distance}

    def _observation(self) -> np.ndarray:
        return np.concatenate([self.position, self.velocity])


gym.register("mumo/PointNavigation-v0", entry_point=PointNavigationEnv, max_episode_steps=100)


class BatchedNavigation:
    """Every (task, rollout) pair of a meta-batch at once: states [N, 2], goals [N, 2].

    The same dynamics and reward as `PointNavigationEnv`, with environment-scale actions.
    """

    observation_size, action_size = 4, 2

    def __init__(self, goals: Tensor) -> None:
        self.goals = goals
        self.position = torch.zeros_like(goals)
        self.velocity = torch.zeros_like(goals)

    def reset(self, generator: torch.Generator | None = None, observation: Tensor | None = None) -> Tensor:
        """Start every episode: from `observation` [N, 4] if given, else at the reset distribution."""
        if observation is not None:
            self.position, self.velocity = observation[:, :2].clone(), observation[:, 2:].clone()
        else:
            uniform = torch.rand(2, *self.goals.shape, generator=generator, dtype=self.goals.dtype)
            self.position, self.velocity = 0.4 * uniform[0] - 0.2, 0.2 * uniform[1] - 0.1
        return self.observation()

    def step(self, action: Tensor) -> tuple[Tensor, Tensor]:
        """(next observations [N, 4], rewards [N]) for environment-scale actions [N, 2]."""
        self.velocity = self.velocity + action.clamp(-MAX_ACCEL, MAX_ACCEL)
        self.position = self.position + self.velocity
        return self.observation(), -(self.position - self.goals).norm(dim=-1)

    def observation(self) -> Tensor:
        return torch.cat([self.position, self.velocity], dim=-1)
