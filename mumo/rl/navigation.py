"""2-D point-mass navigation with momentum and a multimodal goal distribution (paper §4.2,
Figures 3a and 3d).

A task is a goal g in the plane. The agent observes its position and velocity [p, v], adds an
action a (clipped to [-0.1, 0.1]^2) to its velocity, moves by the new velocity, and receives
-||p - g|| for the position it reached. Episodes last `horizon` steps and never end early.
Goals are g = c + N(0, sigma^2 I) around one of the mode centres c.

Two implementations of the same dynamics: `PointNavigationEnv`, a standard gymnasium environment
(registered as `mumo/PointNavigation-v0`), and `BatchedNavigation`, which steps every (task,
rollout) pair of a meta-batch in one tensor operation for training. `Navigation` is the
environment as the RL family sees it (`mumo.rl.tasks.RLEnvironment`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor

from mumo.rl.tasks import GaussianModes, TaskBatch

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


def goal_distribution(modes: int = 2, noise_std: float = 1.0) -> GaussianModes:
    """Goals around the `modes` centres of `mode_centres` with isotropic noise of std `noise_std`."""
    return GaussianModes(tuple(map(tuple, mode_centres(modes).tolist())), noise_std)


class PointNavigationEnv(gym.Env):
    """One navigation task as a gymnasium environment.

    The task is set with `set_task(goal)` (or `reset(options={"goal": goal})`), read with
    `get_task()`; `sample_tasks(n)` draws goals from the environment's goal distribution.
    """

    metadata = {"render_modes": []}

    def __init__(self, modes: int = 2, noise_std: float = 1.0, goal: tuple[float, float] | None = None) -> None:
        self.goals = goal_distribution(modes, noise_std)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (4,), np.float64)
        self.action_space = gym.spaces.Box(-MAX_ACCEL, MAX_ACCEL, (2,), np.float64)
        self.goal = np.zeros(2) if goal is None else np.asarray(goal, dtype=np.float64)
        self.position, self.velocity = np.zeros(2), np.zeros(2)

    def sample_tasks(self, n: int) -> list[np.ndarray]:
        """`n` goals of the goal distribution, modes balanced (n must be a multiple of modes)."""
        generator = torch.Generator().manual_seed(int(self.np_random.integers(2**31)))
        goals = self.goals.sample(n // self.goals.modes, generator).params
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


class Navigation:
    """2-D navigation for the RL family: goals, the batched simulator, trajectory figures.

    Args:
        modes: 2 (the paper's bimodal), 4 or 6 goal modes (`mode_centres`).
        noise_std: goal noise around the mode centre.
    """

    name, gym_id = "navigation", "mumo/PointNavigation-v0"
    observation_size, action_size = BatchedNavigation.observation_size, BatchedNavigation.action_size
    action_limit = MAX_ACCEL

    def __init__(self, modes: int = 2, noise_std: float = 1.0) -> None:
        self.tasks = goal_distribution(modes, noise_std)

    def batched(self, params: Tensor, threads: int = 1) -> BatchedNavigation:
        return BatchedNavigation(params)

    def plot_rollouts(self, tasks: TaskBatch, observations: Sequence[Tensor], stage_names: Sequence[str],
                      path: Path) -> None:
        """Figure 3d: one panel per task, its goal over the goal density's contours, and one
        rollout's positions at every stage (before modulation, after modulation, after each step)."""
        from mumo.plots import plt, save

        n = tasks.num_tasks
        fig, axes = plt.subplots(1, n, figsize=(3.6 * n, 3.8), squeeze=False)
        extent = float(torch.tensor(self.tasks.centres).abs().max()) + 3 * self.tasks.noise_std + 1
        axis = torch.linspace(-extent, extent, 120)
        gx, gy = torch.meshgrid(axis, axis, indexing="xy")
        density = self.tasks.density(torch.stack([gx, gy], dim=-1))
        colors = plt.get_cmap("viridis")(torch.linspace(0, 0.9, len(stage_names)).tolist())
        for t, ax in enumerate(axes[0]):
            ax.contour(gx.numpy(), gy.numpy(), density.numpy(), levels=6, colors="0.75", linewidths=0.8)
            for name, color, obs in zip(stage_names, colors, observations):
                ax.plot(obs[t, :, 0], obs[t, :, 1], color=color, lw=1.6, label=name)
            ax.plot(*tasks.params[t].tolist(), marker="*", color="tab:red", markersize=14, label="goal", ls="")
            ax.plot(0, 0, marker="o", color="black", markersize=4, ls="")
            ax.set_xlim(-extent, extent), ax.set_ylim(-extent, extent), ax.set_aspect("equal")
            ax.set_title(f"test task {t + 1}, mode {self.tasks.mode_names[int(tasks.mode[t])]}", fontsize=10)
        handles, labels = axes[0, 0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="lower center", ncol=len(labels), frameon=False, fontsize=9)
        fig.suptitle("trajectories before and after adaptation (one rollout per stage)")
        save(fig, path, rect=(0, 0.08, 1, 0.95))
