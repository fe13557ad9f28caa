"""Sweep-level figures: adaptation curves of every method, and paper Figure 2a/2b comparisons."""

from __future__ import annotations

import logging
from collections import defaultdict
from pathlib import Path

import torch

from mumo.checkpoints import load_checkpoint, restore_config, restore_run
from mumo.errors import MumoError
from mumo.plots import draw_task, first_tasks_per_mode, fit_curves, input_grid, plt
from mumo.report import paper_order, row_key, row_name

log = logging.getLogger(__name__)

STYLE = {
    ("maml", "none"): dict(color="tab:gray", ls="--"),
    ("multi_maml", "none"): dict(color="tab:brown", ls="--"),
    ("mumomaml", "softmax"): dict(color="tab:green"),
    ("mumomaml", "sigmoid"): dict(color="tab:purple"),
    ("mumomaml", "film"): dict(color="tab:red"),
}


def plot_adaptation_curves(runs: list[dict], path: Path) -> None:
    """Query MSE against inner steps, every method (mean over seeds), one panel per mode count."""
    by_modes: dict[int, dict[tuple, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for r in runs:
        by_modes[r["modes"]][row_key(r)].append(r)
    modes = sorted(by_modes)
    fig, axes = plt.subplots(1, len(modes), figsize=(5.5 * len(modes), 4.2), squeeze=False)
    for ax, m in zip(axes[0], modes):
        for key in paper_order(by_modes[m]):
            group = by_modes[m][key]
            curves = torch.tensor([r["test"]["mse_by_step"] for r in group if len(r["test"]["mse_by_step"]) ==
                                   len(group[0]["test"]["mse_by_step"])])
            mean = curves.mean(0)
            ax.plot(range(len(mean)), mean, marker="o", label=f"{row_name(key)} (n={len(curves)})", **STYLE.get(key[:2], {}))
        ax.set_yscale("log")
        ax.set_xlabel("inner steps taken (0 = after modulation)")
        ax.set_ylabel("query MSE (test tasks)")
        ax.set_title(f"{m} modes")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _restore(run: dict):
    path = Path(run["_dir"]) / "checkpoints" / "last.ckpt"
    try:
        checkpoint = load_checkpoint(path)
        return restore_run(restore_config(checkpoint), checkpoint)
    except MumoError as err:
        log.warning("figure 2: skipping %s (%s)", run["_dir"], err)
        return None


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
        tasks = datamodule.tasks
        shown = first_tasks_per_mode(datamodule.test_set(), per_mode)
        grid, truth = input_grid(tasks, shown)
        curves = {k: fit_curves(module, shown, grid) for k, (_, module) in restored.items()}
        for panel, index, title in (("2a", 0, "after modulation (MAML / Multi-MAML: their priors)"),
                                    ("2b", 1, "after adaptation")):
            fig, axes = plt.subplots(m, per_mode, figsize=(4 * per_mode, 2.9 * m), squeeze=False, sharex=True)
            gx = grid[0, :, 0].numpy()
            for t in range(shown.num_tasks):
                ax = axes[int(shown.mode[t]), t % per_mode]
                title = f"{tasks.mode_names[int(shown.mode[t])]} task {t % per_mode + 1}"
                draw_task(ax, grid, truth, shown, t, title, lw=2.5)
                for key, pair in curves.items():
                    ax.plot(gx, pair[index][t, :, 0].numpy(), lw=1.5, label=row_name(key), **STYLE.get(key[:2], {}))
            handles, labels = axes[0, 0].get_legend_handles_labels()
            fig.suptitle(f"Figure {panel}: {m} modes, {title}")
            fig.legend(handles, labels, loc="lower center", ncol=4, frameon=False, fontsize=9)
            fig.tight_layout(rect=(0, 0.08, 1, 0.96))
            path = out / f"figure{panel}_{m}modes.png"
            fig.savefig(path, dpi=110)
            plt.close(fig)
            written.append(path)
    return written
