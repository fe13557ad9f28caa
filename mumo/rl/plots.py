"""Figures of a navigation run: trajectories of test tasks over the goal density before and
after adaptation (paper Figure 3d)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from mumo.plots import plt, save
from mumo.rl.navigation import GoalBatch, GoalDistribution, mode_centres


def goal_density(goals: GoalDistribution, grid: Tensor) -> Tensor:
    """The goal distribution's density at points [..., 2] (an equal-weight Gaussian mixture)."""
    d2 = (grid.unsqueeze(-2) - mode_centres(goals.modes)).pow(2).sum(-1)
    var = goals.noise_std**2
    return torch.exp(-d2 / (2 * var)).mean(-1) / (2 * torch.pi * var)


def plot_trajectories(goals: GoalDistribution, tasks: GoalBatch, paths: list[Tensor], stage_names: list[str],
                      path: Path) -> None:
    """One panel per task: its goal, the goal density's contours, and one rollout's positions
    [T, H, 2] at every stage (before modulation, after modulation, after each gradient step)."""
    n = tasks.num_tasks
    fig, axes = plt.subplots(1, n, figsize=(3.6 * n, 3.8), squeeze=False)
    extent = float(mode_centres(goals.modes).abs().max()) + 3 * goals.noise_std + 1
    axis = torch.linspace(-extent, extent, 120)
    gx, gy = torch.meshgrid(axis, axis, indexing="xy")
    density = goal_density(goals, torch.stack([gx, gy], dim=-1))
    colors = plt.get_cmap("viridis")(torch.linspace(0, 0.9, len(stage_names)).tolist())
    for t, ax in enumerate(axes[0]):
        ax.contour(gx.numpy(), gy.numpy(), density.numpy(), levels=6, colors="0.75", linewidths=0.8)
        for stage, (name, color) in enumerate(zip(stage_names, colors)):
            xy = paths[stage][t]
            ax.plot(xy[:, 0], xy[:, 1], color=color, lw=1.6, label=name)
        ax.plot(*tasks.goals[t].tolist(), marker="*", color="tab:red", markersize=14, label="goal", ls="")
        ax.plot(0, 0, marker="o", color="black", markersize=4, ls="")
        ax.set_xlim(-extent, extent), ax.set_ylim(-extent, extent), ax.set_aspect("equal")
        ax.set_title(f"test task {t + 1}, mode {goals.mode_names[int(tasks.mode[t])]}", fontsize=10)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), frameon=False, fontsize=9)
    fig.suptitle("trajectories before and after adaptation (one rollout per stage)")
    save(fig, path, rect=(0, 0.08, 1, 0.95))
