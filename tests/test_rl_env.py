"""2-D navigation: goal distributions, the gymnasium environment, and the batched simulator that
must agree with it."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from helpers import episode_length

from mumo.rl.navigation import BatchedNavigation, goal_distribution, mode_centres
from mumo.rl.tasks import PolicyScaleActions, policy_to_env


@pytest.mark.parametrize("modes", [2, 4, 6])
def test_goals_are_balanced_around_the_mode_centres(modes):
    goals, mode = goal_distribution(modes, noise_std=0.5).sample(4000, torch.Generator().manual_seed(0))
    assert goals.shape == (4000 * modes, 2) and mode.bincount().tolist() == [4000] * modes
    centres = mode_centres(modes)
    assert centres.norm(dim=1).allclose(torch.full((modes,), 50 ** 0.5 if modes < 6 else 5.0))
    for m in range(modes):
        offsets = goals[mode == m] - centres[m]
        assert offsets.mean(0).abs().max() < 0.03 and offsets.std(0).sub(0.5).abs().max() < 0.02


@pytest.mark.filterwarnings("ignore:.*Box observation space:UserWarning")  # positions are unbounded
def test_the_gymnasium_environment_is_standard_and_never_ends_early():
    env = gym.make("mumo/PointNavigation-v0", modes=2)
    check_env(env.unwrapped, skip_render_check=True)
    env.unwrapped.set_task([3.0, 4.0])
    obs, info = env.reset(seed=0)
    assert obs.shape == (4,) and info["goal"].tolist() == [3.0, 4.0]
    assert np.all(np.abs(obs[:2]) <= 0.2) and np.all(np.abs(obs[2:]) <= 0.1)
    assert episode_length(env) == 100
    assert len(env.unwrapped.sample_tasks(6)) == 6


def test_reward_is_minus_the_distance_of_the_new_position_to_the_goal():
    sim = BatchedNavigation(torch.tensor([[3.0, 4.0]], dtype=torch.float64))
    sim.reset(observation=torch.tensor([[0.0, 0.0, 0.01, 0.0]], dtype=torch.float64))
    obs, reward = sim.step(torch.tensor([[0.04, 0.5]], dtype=torch.float64))  # y clipped to 0.1
    assert obs.tolist() == [[0.05, 0.1, 0.05, 0.1]]
    assert reward.item() == pytest.approx(-((3 - 0.05) ** 2 + (4 - 0.1) ** 2) ** 0.5, abs=1e-12)


def test_policy_scale_actions_map_the_policy_box_onto_the_environment_box():
    assert policy_to_env(torch.tensor([10.0, -5.0, 30.0]), 10.0, 0.1).tolist() == pytest.approx([0.1, -0.05, 0.1])
    env = PolicyScaleActions(gym.make("mumo/PointNavigation-v0"), policy_scale=10.0)
    assert env.action_space.high.tolist() == [10.0, 10.0]
    assert env.action(np.array([5.0, -20.0])).tolist() == pytest.approx([0.05, -0.1])


def test_batched_simulator_agrees_with_the_gymnasium_environment():
    tasks, rollouts, horizon = 3, 2, 100
    goals, _ = goal_distribution(2).sample(2, torch.Generator().manual_seed(1))
    goals = goals[:tasks].double().repeat_interleave(rollouts, dim=0)
    envs = [PolicyScaleActions(gym.make("mumo/PointNavigation-v0"), policy_scale=10.0) for _ in goals]
    first = [env.reset(seed=i, options={"goal": goal.numpy()})[0] for i, (env, goal) in enumerate(zip(envs, goals))]
    sim = BatchedNavigation(goals)
    observation = sim.reset(observation=torch.tensor(np.stack(first)))
    actions = torch.randn(horizon, len(goals), 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64) * 8
    for t in range(horizon):
        steps = [env.step(a.numpy()) for env, a in zip(envs, actions[t])]
        observation, reward = sim.step(policy_to_env(actions[t], 10.0, 0.1))
        torch.testing.assert_close(observation, torch.tensor(np.stack([s[0] for s in steps])), rtol=0, atol=1e-12)
        torch.testing.assert_close(reward, torch.tensor([s[1] for s in steps], dtype=torch.float64), rtol=0, atol=1e-12)
    assert all(s[3] for s in steps)  # both truncate at the horizon
