"""Figures of every task family: adaptation and training curves, task embeddings, shared axes."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402


def save(fig, path: Path, rect: tuple[float, float, float, float] | None = None) -> None:
    """Lay out, write as PNG and close a figure."""
    fig.tight_layout(rect=rect)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def metric_axis(ax, values: list[float], label: str = "query MSE (test tasks)") -> None:
    """A metric's y axis with plain decimal tick labels (never '1.6675 x 10^1'): log scale when
    the values are positive and span more than a decade (errors), linear otherwise (returns, or
    no values: a panel with nothing drawn keeps its label)."""
    from matplotlib.ticker import LogFormatter

    if values and 0 < min(values) and max(values) > 10 * min(values):
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(LogFormatter(labelOnlyBase=False))
        ax.yaxis.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5)))
    else:
        ax.ticklabel_format(axis="y", style="plain", useOffset=False)
    ax.set_ylabel(label)
    ax.grid(alpha=0.3, which="both")


def first_tasks_per_mode(episode, per_mode: int):
    """The first `per_mode` tasks of every mode present in a batch of tasks (an `Episode`, a
    `TaskBatch`: anything with `mode` and `select`), in mode order."""
    index = torch.cat([torch.nonzero(episode.mode == m).flatten()[:per_mode] for m in episode.mode.unique()])
    return episode.select(index)


METRIC_LABELS = {"mse": "query MSE", "return": "return", "accuracy": "query accuracy"}


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
    metric_axis(ax, values, label=METRIC_LABELS[results.get("metric", "mse")])
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
