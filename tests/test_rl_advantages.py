"""Returns, the linear baseline and advantages against hand-computed values and a per-task loop."""

import numpy as np
import pytest
import torch

from mumo.rl.advantages import (
    baseline_features,
    discounted_returns,
    fit_linear_baseline,
    gae,
    normalize_per_task,
    task_advantages,
)


def test_returns_and_advantages_of_a_hand_computed_rollout():
    rewards = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    values = torch.ones(3, dtype=torch.float64)
    assert discounted_returns(rewards, 0.5).tolist() == [2.75, 3.5, 3.0]
    assert gae(rewards, values, gamma=0.5, lam=1.0).tolist() == [1.75, 2.5, 2.0]  # = returns - values
    assert gae(rewards, values, gamma=0.5, lam=0.5).tolist() == [1.0, 2.0, 2.0]


def test_the_baseline_reproduces_returns_that_are_linear_in_its_features():
    obs = torch.randn(2, 4, 10, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    features = baseline_features(obs)
    assert features.shape == (2, 4, 10, 10) and features[..., -1].eq(1).all()
    assert features[0, 0, :, -4].tolist() == pytest.approx([t / 100 for t in range(10)])
    returns = 2.0 * obs[..., 0] - obs[..., 1] ** 2 + 3.0 * torch.arange(10) / 100 + torch.tensor([1.0, -4.0]).view(2, 1, 1)
    torch.testing.assert_close(fit_linear_baseline(features, returns), returns, rtol=0, atol=1e-3)  # ridge 1e-5


def reference_task_advantages(obs: np.ndarray, rewards: np.ndarray, gamma: float) -> np.ndarray:
    """ProMP's sample processing for one task, written as loops (the original's algorithm)."""
    rollouts, horizon = rewards.shape
    returns = np.zeros_like(rewards)
    for r in range(rollouts):
        running = 0.0
        for t in reversed(range(horizon)):
            running = rewards[r, t] + gamma * running
            returns[r, t] = running
    rows = []
    for r in range(rollouts):
        for t in range(horizon):
            s = np.clip(obs[r, t], -10, 10)
            rows.append(np.concatenate([s, s**2, [t / 100, (t / 100) ** 2, (t / 100) ** 3, 1.0]]))
    x = np.array(rows)
    w = np.linalg.solve(x.T @ x + 1e-5 * np.eye(x.shape[1]), x.T @ returns.reshape(-1))
    advantages = returns - (x @ w).reshape(rollouts, horizon)  # GAE with lambda = 1
    return (advantages - advantages.mean()) / (advantages.std() + 1e-8)


def test_batched_processing_equals_a_per_task_loop():
    generator = torch.Generator().manual_seed(3)
    obs = 3 * torch.randn(4, 5, 20, 4, generator=generator, dtype=torch.float64)
    rewards = torch.randn(4, 5, 20, generator=generator, dtype=torch.float64) - obs[..., 0].abs()
    batched = task_advantages(obs, rewards, gamma=0.99)
    for task in range(4):
        expected = reference_task_advantages(obs[task].numpy(), rewards[task].numpy(), 0.99)
        np.testing.assert_allclose(batched[task].numpy(), expected, rtol=1e-7, atol=1e-9)


def test_advantages_are_normalised_within_each_task():
    adv = normalize_per_task(torch.randn(3, 4, 5, generator=torch.Generator().manual_seed(4)) * torch.tensor([1, 10, 100]).view(3, 1, 1))
    flat = adv.flatten(1)
    torch.testing.assert_close(flat.mean(1), torch.zeros(3), rtol=0, atol=1e-5)
    torch.testing.assert_close(flat.std(1, unbiased=False), torch.ones(3), rtol=0, atol=1e-5)
