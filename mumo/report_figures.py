"""Sweep-level figures: adaptation curves of every method, and paper Figure 2a/2b comparisons."""

from __future__ import annotations

import logging
import textwrap
from collections import defaultdict
from pathlib import Path

import torch
from omegaconf import OmegaConf

from mumo.checkpoints import load_checkpoint, restore_run
from mumo.errors import MumoError
from mumo.plots import METRIC_LABELS, first_tasks_per_mode, metric_axis, plt, save
from mumo.regression.plots import draw_task, fit_curves, input_grid
from mumo.report import column_name, column_of, paper_order, row_key, row_name

log = logging.getLogger(__name__)

STYLE = {
    ("maml", "none"): dict(color="tab:gray", ls="--"),
    ("multi_maml", "none"): dict(color="tab:brown", ls="--"),
    ("mumomaml", "softmax"): dict(color="tab:green"),
    ("mumomaml", "sigmoid"): dict(color="tab:purple"),
    ("mumomaml", "film"): dict(color="tab:red"),
}


def _by_method(runs: list[dict]) -> list[tuple[tuple, list[dict]]]:
    """A panel's runs grouped by method row, in the paper's order."""
    by_key: dict[tuple, list[dict]] = defaultdict(list)
    for r in runs:
        by_key[row_key(r)].append(r)
    return [(key, by_key[key]) for key in paper_order(by_key)]


def _panel_axes(panels: dict[str, list[dict]]):
    """A figure with one titled axis per panel: (figure, [(axis, metric, runs by method), ...])."""
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4.2), squeeze=False)
    for ax, title in zip(axes[0], panels):
        ax.set_title(textwrap.fill(title, 48))
    return fig, [(ax, runs[0].get("metric", "mse"), _by_method(runs)) for ax, runs in zip(axes[0], panels.values())]


def plot_adaptation_curves(panels: dict[str, list[dict]], path: Path) -> None:
    """The test metric against inner steps, every method (mean over seeds), one panel per entry of
    `panels` (title -> its runs): regression's numbers of modes (Figure 2's curves), or the RL
    environments (Figure 3a-c)."""
    fig, axes = _panel_axes(panels)
    for ax, metric, methods in axes:
        shown, longest = [], 0
        for key, runs in methods:
            by_step = [r["test"][f"{metric}_by_step"] for r in runs]
            curves = torch.tensor([c for c in by_step if len(c) == len(by_step[0])])
            mean = curves.mean(0)
            shown += mean.tolist()
            longest = max(longest, len(mean))
            ax.plot(range(len(mean)), mean, marker="o", label=f"{row_name(key)} (n={len(curves)})", **STYLE.get(key[:2], {}))
        metric_axis(ax, shown, f"{METRIC_LABELS[metric]} (test tasks)")
        ax.set_xticks(range(longest))
        ax.set_xlabel("inner steps taken (0 = after modulation)")
        ax.legend(fontsize=8)
    save(fig, path)


def validation_history(run: dict) -> dict[int, float]:
    """A run's validation metric after adaptation by meta-iteration (over every segment of a
    resumed run; empty for runs that record none)."""
    return {step: adapted for step, _, adapted in run.get("history", {}).get("val", [])}


def mean_curve(curves: list[dict[int, float]]) -> tuple[list[int], list[float]]:
    """The mean of several seeds' curves at the iterations every one of them has."""
    steps = sorted(set.intersection(*(set(c) for c in curves)))
    return steps, [sum(c[s] for c in curves) / len(curves) for s in steps]


def plot_validation_curves(panels: dict[str, list[dict]], path: Path) -> None:
    """The validation metric after adaptation against meta-iterations, every method: each seed
    thin, their mean (over the iterations every seed was validated at) bold. Shows where a method
    stops improving or degrades, which a single test point after training cannot."""
    fig, axes = _panel_axes(panels)
    for ax, metric, methods in axes:
        shown = []
        for key, runs in methods:
            style = STYLE.get(key[:2], {})
            curves = [c for r in runs if (c := validation_history(r))]
            if not curves:
                continue
            for c in curves:
                ax.plot(list(c), list(c.values()), lw=0.8, alpha=0.35, **style)
            ax.plot(*mean_curve(curves), lw=2, label=f"{row_name(key)} (n={len(curves)})", **style)
            shown += [v for c in curves for v in c.values()]
        metric_axis(ax, shown, f"{METRIC_LABELS[metric]} (validation, after adaptation)")
        ax.set_xlabel("meta-iterations")
        if shown:
            ax.legend(fontsize=8)
    save(fig, path)


FIGURE_OF_METRIC = {"mse": "adaptation_curves.png", "return": "adaptation_curves_rl.png",
                    "accuracy": "adaptation_curves_classification.png"}


def curve_figures(families: dict[str, list[dict]], out: Path) -> list[Path]:
    """Two figures per kind of task, a panel per task and table column (`column_of`): the test
    metric against inner steps (adaptation_curves.png for regression, Figure 2's curves;
    adaptation_curves_rl.png for the RL environments, Figure 3a-c;
    adaptation_curves_classification.png) and the validation metric against meta-iterations
    (validation_curves*.png)."""
    by_figure: dict[str, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for name, runs in sorted(families.items()):
        for r in sorted(runs, key=column_of):
            figure = FIGURE_OF_METRIC.get(r.get("metric", "mse"), f"adaptation_curves_{name}.png")
            column = column_name(column_of(r))
            title = column if name == "regression" else f"{name}, {column}"
            by_figure[figure][title].append(r)
    written = []
    for figure, panels in by_figure.items():
        adaptation, validation = out / figure, out / figure.replace("adaptation", "validation")
        plot_adaptation_curves(dict(panels), adaptation)
        plot_validation_curves(dict(panels), validation)
        written += [adaptation, validation]
    return written


def _restore(run: dict):
    """(data module, meta-learner) of a reported run, built from the config its numbers came from
    (results.json's `config`) and its weights: its own last.ckpt, or the checkpoint it evaluated."""
    provenance = run.get("provenance", {})
    evaluated = provenance.get("kind") == "evaluated"
    path = Path(provenance["checkpoint"]) if evaluated else Path(run["_dir"]) / "checkpoints" / "last.ckpt"
    try:
        return restore_run(OmegaConf.create(run["config"]), load_checkpoint(path))
    except MumoError as err:
        log.warning("figure 2: skipping %s (%s)", run["_dir"], err)
        return None


PANELS = {"2a": (0, "after modulation (MAML / Multi-MAML: their priors)"), "2b": (1, "after adaptation")}


def comparison_figures(runs: list[dict], out: Path, per_mode: int = 2) -> list[Path]:
    """Figure 2a (after modulation vs the MAML and Multi-MAML priors) and 2b (after adaptation).

    Every method's lowest-seed run, on the same test tasks, per number of modes.
    """
    written = []
    by_modes: dict[int, dict[tuple, dict]] = defaultdict(dict)
    for r in sorted(runs, key=lambda r: r["seed"], reverse=True):
        by_modes[r["modes"]][row_key(r)] = r
    for m, chosen in sorted(by_modes.items()):
        restored = {k: x for k in paper_order(chosen) if (x := _restore(chosen[k])) is not None}
        if not restored:
            continue
        datamodule, _ = next(iter(restored.values()))
        shown = first_tasks_per_mode(datamodule.test_set(), per_mode)
        grid, truth = input_grid(datamodule.tasks, shown)
        curves = {k: fit_curves(module, shown, grid) for k, (_, module) in restored.items()}
        for panel in PANELS:
            path = out / f"figure{panel}_{m}modes.png"
            save(figure2(panel, datamodule.tasks.mode_names, shown, grid, truth, curves), path, rect=(0, 0.08, 1, 0.96))
            written.append(path)
    return written


def figure2(panel: str, mode_names: list[str], shown, grid: torch.Tensor, truth: torch.Tensor,
            curves: dict[tuple, tuple[torch.Tensor, torch.Tensor]]):
    """One Figure 2 panel ('2a' or '2b'): a row per mode, `shown` test tasks, every method's fit."""
    index, stage = PANELS[panel]
    modes = len(mode_names)
    per_mode = shown.num_tasks // len(shown.mode.unique())
    fig, axes = plt.subplots(modes, per_mode, figsize=(4 * per_mode, 2.9 * modes), squeeze=False, sharex=True)
    gx = grid[0, :, 0].numpy()
    for t in range(shown.num_tasks):
        ax = axes[int(shown.mode[t]), t % per_mode]
        draw_task(ax, grid, truth, shown, t, f"{mode_names[int(shown.mode[t])]} task {t % per_mode + 1}", lw=2.5)
        for key, pair in curves.items():
            ax.plot(gx, pair[index][t, :, 0].numpy(), lw=1.5, label=row_name(key), **STYLE.get(key[:2], {}))
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.suptitle(f"Figure {panel}: {modes} modes, {stage}")
    fig.legend(handles, labels, loc="lower center", ncol=4, frameon=False, fontsize=9)
    return fig
