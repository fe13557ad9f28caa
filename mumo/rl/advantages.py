"""Returns, the linear feature baseline and advantages, batched over tasks (the sample
processing of ProMP, which the original code used unchanged).

Shapes: a task's rollouts are [T tasks, R rollouts, H steps]; every rollout has exactly H steps
(the environments never end early). Each task's baseline is fitted on its own rollouts, and its
advantages are normalised over its own samples.
"""

from __future__ import annotations

import torch
from torch import Tensor


def discount_matrix(horizon: int, factor: float, dtype: torch.dtype = torch.float32) -> Tensor:
    """D [H, H] with D[t, k] = factor^(k - t) for k >= t, else 0: x @ D.T sums x_k factor^(k-t)."""
    t = torch.arange(horizon, dtype=dtype)
    power = t.view(1, -1) - t.view(-1, 1)
    return torch.where(power >= 0, factor ** power.clamp(min=0), torch.zeros((), dtype=dtype))


def discounted_returns(rewards: Tensor, gamma: float) -> Tensor:
    """R_t = sum_k gamma^k r_{t+k} within each rollout: [..., H] -> [..., H]."""
    return rewards @ discount_matrix(rewards.shape[-1], gamma, rewards.dtype).T


def baseline_features(observations: Tensor) -> Tensor:
    """Per-step features of the linear baseline: [clip(s), clip(s)^2, t/100, (t/100)^2, (t/100)^3, 1],
    s clipped to [-10, 10]: [..., H, d] -> [..., H, 2d + 4]."""
    s = observations.clamp(-10, 10)
    t = torch.arange(s.shape[-2], dtype=s.dtype) / 100
    time = torch.stack([t, t**2, t**3, torch.ones_like(t)], dim=-1).expand(*s.shape[:-1], 4)
    return torch.cat([s, s**2, time], dim=-1)


def fit_linear_baseline(features: Tensor, returns: Tensor, reg: float = 1e-5, retries: int = 5) -> Tensor:
    """Each task's ridge-regression fit of its returns, evaluated on its own samples.

    features [T, R, H, F], returns [T, R, H] -> baseline values [T, R, H]. As in the original, a
    solve that gives non-finite weights is retried with 10x the regularisation, up to `retries` times.
    """
    x = features.flatten(1, 2)  # [T, R * H, F]
    y = returns.flatten(1, 2).unsqueeze(-1)
    gram, target = x.transpose(1, 2) @ x, x.transpose(1, 2) @ y
    eye = torch.eye(gram.shape[-1], dtype=gram.dtype)
    regs = torch.full((len(gram), 1, 1), reg, dtype=gram.dtype)
    for _ in range(retries):
        weights = torch.linalg.solve(gram + regs * eye, target)
        bad = ~torch.isfinite(weights).all(dim=(1, 2))
        if not bad.any():
            break
        regs[bad] *= 10
    return (x @ weights).view_as(returns)


def gae(rewards: Tensor, values: Tensor, gamma: float, lam: float) -> Tensor:
    """Generalised advantage estimates [..., H]: sum_k (gamma lam)^k delta_{t+k}, with
    delta_t = r_t + gamma V_{t+1} - V_t and V_H = 0. With lam = 1 this is R_t - V_t."""
    next_values = torch.nn.functional.pad(values[..., 1:], (0, 1))
    deltas = rewards + gamma * next_values - values
    return deltas @ discount_matrix(rewards.shape[-1], gamma * lam, rewards.dtype).T


def normalize_per_task(advantages: Tensor, eps: float = 1e-8) -> Tensor:
    """Zero mean and unit (population) std over each task's samples: [T, ...] -> [T, ...]."""
    flat = advantages.flatten(1)
    mean, std = flat.mean(1), flat.std(1, unbiased=False)
    shape = (-1,) + (1,) * (advantages.dim() - 1)
    return (advantages - mean.view(shape)) / (std.view(shape) + eps)


def task_advantages(observations: Tensor, rewards: Tensor, gamma: float = 0.99, lam: float = 1.0) -> Tensor:
    """ProMP's processing of one stage's samples: returns, a linear baseline fitted per task, GAE
    and per-task normalisation. observations [T, R, H, d], rewards [T, R, H] -> [T, R, H]."""
    returns = discounted_returns(rewards, gamma)
    values = fit_linear_baseline(baseline_features(observations), returns)
    return normalize_per_task(gae(rewards, values, gamma, lam))
