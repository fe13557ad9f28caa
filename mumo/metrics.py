"""Evaluation summaries: query MSE after modulation and after each inner step, with 95% CIs.

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


def _summary(mse_by_step: Tensor) -> dict:
    """Metrics of one group of tasks from their per-task MSE [S + 1, n]."""
    by_step = [mean_ci95(row) for row in mse_by_step]
    return {
        "num_tasks": mse_by_step.shape[1],
        "post_modulation_mse": by_step[0][0],
        "post_modulation_ci95": by_step[0][1],
        "post_adaptation_mse": by_step[-1][0],
        "post_adaptation_ci95": by_step[-1][1],
        "mse_by_step": [m for m, _ in by_step],
        "mse_by_step_ci95": [c for _, c in by_step],
    }


def summarize(mse_by_step: Tensor, mode: Tensor, mode_names: list[str]) -> dict:
    """Overall and per-mode metrics from per-task query MSE [S + 1, T] and mode labels [T].

    `post_modulation` is step 0 (tau applied, no gradient step: for MAML, the plain prior);
    `post_adaptation` is the last step.
    """
    mse_by_step, mode = mse_by_step.double().cpu(), mode.cpu()
    out = _summary(mse_by_step)
    out["per_mode"] = {
        name: _summary(mse_by_step[:, mode == m]) for m, name in enumerate(mode_names) if (mode == m).any()
    }
    return out
