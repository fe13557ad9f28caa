"""Regression figures: fits of test tasks after modulation and after adaptation (Figure 2a/b)."""

from __future__ import annotations

from pathlib import Path

import torch

from mumo.core.episode import Episode
from mumo.plots import first_tasks_per_mode, plt, save
from mumo.regression.functions import RegressionTasks
from mumo.regression.module import RegressionMetaLearner


def fit_curves(module: RegressionMetaLearner, episode: Episode, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Predictions at x [T, G, 1] after modulation (step 0) and after all inner steps, computed by
    the run's own engine (the one its numbers came from)."""
    with torch.enable_grad():
        return module.engine.predict_adapted(module.model, episode, x)


def input_grid(tasks: RegressionTasks, episode: Episode, points: int = 200) -> tuple[torch.Tensor, torch.Tensor]:
    """Evenly spaced inputs [T, points, 1] over the input range, and each task's true function there."""
    lo, hi = tasks.input_range
    grid = torch.linspace(lo, hi, points).view(1, -1, 1).expand(episode.num_tasks, -1, -1).contiguous()
    return grid, tasks.true_function(episode.mode, episode.params, grid)


def draw_task(ax, grid: torch.Tensor, truth: torch.Tensor, episode: Episode, t: int, title: str, lw: float = 2) -> None:
    """One task's panel: ground truth, support points, title and axes (model curves go on top)."""
    ax.plot(grid[t, :, 0].numpy(), truth[t, :, 0].numpy(), color="black", lw=lw, label="ground truth")
    ax.scatter(episode.support_x[t, :, 0], episode.support_y[t, :, 0], color="tab:orange", zorder=5, s=25,
               label="support points")
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.grid(alpha=0.3)


def plot_fits(module: RegressionMetaLearner, tasks: RegressionTasks, episode: Episode, path: Path, per_mode: int = 3) -> None:
    """Figure 2a/2b style: true function, support points, fits after modulation and adaptation."""
    shown = first_tasks_per_mode(episode, per_mode)
    grid, truth = input_grid(tasks, shown)
    before, after = fit_curves(module, shown, grid)
    steps = module.inner_loop.steps
    rows = tasks.modes
    fig, axes = plt.subplots(rows, per_mode, figsize=(3.6 * per_mode, 2.8 * rows), squeeze=False, sharex=True)
    gx = grid[0, :, 0].numpy()
    for t in range(shown.num_tasks):
        mode = int(shown.mode[t])
        ax = axes[mode, t % per_mode]
        draw_task(ax, grid, truth, shown, t, f"{tasks.mode_names[mode]} task {t % per_mode + 1}")
        ax.plot(gx, before[t, :, 0].numpy(), color="tab:blue", ls="--", label="after modulation (0 steps)")
        ax.plot(gx, after[t, :, 0].numpy(), color="tab:red", label=f"after adaptation ({steps} steps)")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    title = f"{module.model.method} ({module.model.modulation}), {tasks.modes} modes: fits on test tasks"
    fig.suptitle(title)
    fig.legend(handles, labels, loc="lower center", ncol=4, frameon=False)
    save(fig, path, rect=(0, 0.06, 1, 0.96))
