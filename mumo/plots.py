"""Figures written into the run directory."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from mumo.data.episode import Episode  # noqa: E402
from mumo.data.functions import RegressionTasks  # noqa: E402
from mumo.module import MetaLearner  # noqa: E402


def save(fig, path: Path, rect: tuple[float, float, float, float] | None = None) -> None:
    """Lay out, write as PNG and close a figure."""
    fig.tight_layout(rect=rect)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def metric_axis(ax, values: list[float], label: str = "query MSE (test tasks)") -> None:
    """A metric's y axis with plain decimal tick labels (never '1.6675 x 10^1'): log scale when
    the values are positive and span more than a decade (errors), linear otherwise (returns)."""
    from matplotlib.ticker import LogFormatter

    lo, hi = min(values), max(values)
    if lo > 0 and hi > 10 * lo:
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(LogFormatter(labelOnlyBase=False))
        ax.yaxis.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5)))
    else:
        ax.ticklabel_format(axis="y", style="plain", useOffset=False)
    ax.set_ylabel(label)
    ax.grid(alpha=0.3, which="both")


def first_tasks_per_mode(episode, per_mode: int):
    """The first `per_mode` tasks of every mode present in a batch of tasks (an `Episode`, a
    `GoalBatch`: anything with `mode` and `select`), in mode order."""
    index = torch.cat([torch.nonzero(episode.mode == m).flatten()[:per_mode] for m in episode.mode.unique()])
    return episode.select(index)


def fit_curves(module: MetaLearner, episode: Episode, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
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


def plot_fits(module: MetaLearner, tasks: RegressionTasks, episode: Episode, path: Path, per_mode: int = 3) -> None:
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


METRIC_LABELS = {"mse": "query MSE", "return": "return"}


def plot_adaptation_curve(results: dict, path: Path) -> None:
    """The test metric against inner steps taken, overall and per mode, with 95% CIs."""
    test, metric = results["test"], results.get("metric", "mse")
    fig, ax = plt.subplots(figsize=(5.5, 4))
    curves = [("all tasks", test, "black"), *((n, m, None) for n, m in test["per_mode"].items())]
    for name, m, color in curves:
        steps = range(len(m[f"{metric}_by_step"]))
        ax.errorbar(steps, m[f"{metric}_by_step"], yerr=m[f"{metric}_by_step_ci95"], marker="o", capsize=3,
                    label=name, color=color, lw=2.5 if color else 1.5)
    metric_axis(ax, [v for _, m, _ in curves for v in m[f"{metric}_by_step"]], f"{METRIC_LABELS[metric]} (test tasks)")
    ax.set_xlabel("inner steps taken (0 = after modulation)")
    ax.set_xticks(list(range(len(test[f"{metric}_by_step"]))))
    ax.set_title(f"{results['method']} ({results['modulation']}), {results['modes']} modes")
    ax.legend()
    save(fig, path)


def plot_training_curve(results: dict, path: Path) -> None:
    """Meta-training loss (query MSE after adaptation, training batches) and validation MSE after
    modulation / adaptation against meta-iterations, over every segment of a resumed run."""
    history = results["history"]
    fig, ax = plt.subplots(figsize=(6, 4))
    values = []
    if history["train"]:
        steps, loss = zip(*history["train"])
        ax.plot(steps, loss, color="tab:gray", lw=1, alpha=0.8, label="training meta-batches, after adaptation")
        values += loss
    if history["val"]:
        steps, modulated, adapted = zip(*history["val"])
        ax.plot(steps, modulated, marker="o", color="tab:blue", ls="--", label="validation, after modulation")
        ax.plot(steps, adapted, marker="o", color="tab:red", label="validation, after adaptation")
        values += modulated + adapted
    metric_axis(ax, values or [1.0], label=METRIC_LABELS[results.get("metric", "mse")])
    ax.set_xlabel("meta-iterations")
    ax.set_title(f"{results['method']} ({results['modulation']}), {results['modes']} modes: training")
    ax.legend(fontsize=8)
    save(fig, path)


def plot_task_embeddings(embedding: torch.Tensor, mode: torch.Tensor, mode_names: list[str], title: str, path: Path,
                         seed: int = 0) -> None:
    """Figures 2c / 4: tSNE of task embeddings [T, E] of test tasks, coloured by their true mode."""
    from sklearn.manifold import TSNE

    embedding = embedding.detach().cpu().numpy()
    perplexity = min(30.0, max(1.0, (len(embedding) - 1) / 3))  # sklearn needs perplexity < n
    points = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(embedding)
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for m, name in enumerate(mode_names):
        sel = (mode == m).cpu().numpy()
        ax.scatter(points[sel, 0], points[sel, 1], s=6, alpha=0.7, label=name)
    ax.set_xlabel("tSNE 1")
    ax.set_ylabel("tSNE 2")
    ax.set_title(title)
    ax.legend(markerscale=3)
    save(fig, path)
