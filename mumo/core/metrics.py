"""Evaluation summaries: a task metric (regression: query MSE; RL: return) after modulation and
after each inner step, overall and per mode, with 95% CIs.

The CI is over tasks (1.96 * std / sqrt(n)), computed from every task of the fixed evaluation set
(the original code's stale-value bug does not arise; docs/faithfulness.md).
"""

from __future__ import annotations

import math

from torch import Tensor


def mean_ci95(values: Tensor) -> tuple[float, float]:
    """Mean and half-width of the normal 95% confidence interval of `values` [n]."""
    n = values.numel()
    mean = values.mean().item()
    ci = 1.96 * values.std().item() / math.sqrt(n) if n > 1 else float("nan")
    return mean, ci


def _summary(by_step: Tensor, metric: str, before: Tensor | None) -> dict:
    """Metrics of one group of tasks from their per-task values [S + 1, n] (and [n] before modulation)."""
    stats = [mean_ci95(row) for row in by_step]
    out = {"num_tasks": by_step.shape[1]}
    if before is not None:
        out[f"pre_modulation_{metric}"], out["pre_modulation_ci95"] = mean_ci95(before)
    return out | {
        f"post_modulation_{metric}": stats[0][0],
        "post_modulation_ci95": stats[0][1],
        f"post_adaptation_{metric}": stats[-1][0],
        "post_adaptation_ci95": stats[-1][1],
        f"{metric}_by_step": [m for m, _ in stats],
        f"{metric}_by_step_ci95": [c for _, c in stats],
    }


def summarize(by_step: Tensor, mode: Tensor, mode_names: list[str], metric: str = "mse",
              before: Tensor | None = None) -> dict:
    """Overall and per-mode metrics from per-task values [S + 1, T] and mode labels [T].

    `post_modulation` is step 0 (tau applied, no gradient step: for MAML, the plain prior);
    `post_adaptation` is the last step. `before` [T], where a family measures it (RL: the
    un-modulated policy's return), gives `pre_modulation`.
    """
    by_step, mode = by_step.double().cpu(), mode.cpu()
    before = before.double().cpu() if before is not None else None
    out = _summary(by_step, metric, before)
    out["per_mode"] = {
        name: _summary(by_step[:, mode == m], metric, before[mode == m] if before is not None else None)
        for m, name in enumerate(mode_names) if (mode == m).any()
    }
    return out
