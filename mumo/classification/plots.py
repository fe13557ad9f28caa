"""Classification figures: test tasks with their support images and query predictions."""

from __future__ import annotations

from pathlib import Path

from torch import Tensor

from mumo.core.episode import Episode
from mumo.plots import plt, save


def plot_tasks(tasks: Episode, before: Tensor, after: Tensor, mode_names: list[str], steps: int, path: Path) -> None:
    """A row per task: its support images (label above), then its query images with the label
    predicted after modulation / after `steps` steps (green: both right, red: wrong after)."""
    rows, support, query = tasks.num_tasks, tasks.support_x.shape[1], tasks.query_x.shape[1]
    cols = support + query
    fig, axes = plt.subplots(rows, cols, figsize=(1.1 * cols, 1.35 * rows), squeeze=False)
    for t in range(rows):
        images = [(tasks.support_x[t, i], f"label {int(tasks.support_y[t, i])}", "black") for i in range(support)]
        for i in range(query):
            truth, b, a = int(tasks.query_y[t, i]), int(before[t, i]), int(after[t, i])
            images.append((tasks.query_x[t, i], f"{truth}: {b}→{a}", "tab:green" if a == truth else "tab:red"))
        for ax, (image, title, color) in zip(axes[t], images):
            ax.imshow(image.permute(1, 2, 0).clamp(0, 1).numpy())
            ax.set_title(title, fontsize=7, color=color)
            ax.set_xticks([]), ax.set_yticks([])
        axes[t, 0].set_ylabel(mode_names[int(tasks.mode[t])], fontsize=8)
    fig.suptitle(f"test tasks: support | query (true: predicted after modulation → after {steps} steps)", fontsize=9)
    save(fig, path)
