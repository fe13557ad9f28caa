"""Half-cheetah target speed / location: task distributions, the reward and observation
definitions, the gymnasium environments, and the batched mujoco simulator that must agree with
them; a short run learns, and resumes exactly."""

from pathlib import Path

import gymnasium as gym
import mujoco
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from helpers import compose_train, episode_length

from mumo.errors import ConfigError
from mumo.rl.half_cheetah import BatchedHalfCheetah, HalfCheetahTarget, cheetah_model
from mumo.rl.tasks import PolicyScaleActions, policy_to_env
from mumo.train import run

IDS = {"speed": "mumo/HalfCheetahTargetSpeed-v0", "location": "mumo/HalfCheetahTargetLocation-v0"}


@pytest.mark.parametrize("target, centres, std", [("speed", (-1.5, 1.5), 0.5), ("location", (-5.0, 5.0), 1.0)])
def test_tasks_are_bimodal_around_the_configured_centres(target, centres, std):
    env = HalfCheetahTarget(target)
    tasks, mode = env.tasks.sample(4000, torch.Generator().manual_seed(0))
    assert tasks.shape == (8000, 1) and mode.bincount().tolist() == [4000, 4000]
    for m, centre in enumerate(centres):
        offsets = tasks[mode == m, 0] - centre
        assert abs(offsets.mean()) < 0.05 * std and abs(offsets.std() - std) < 0.03 * std
    assert env.tasks.mode_names == [f"{centres[0]:+g} {'m/s' if target == 'speed' else 'm'}",
                                    f"{centres[1]:+g} {'m/s' if target == 'speed' else 'm'}"]
    with pytest.raises(ValueError, match="one centre per mode"):
        HalfCheetahTarget(target, modes=3)


def test_the_model_without_settotalmass_is_the_original_model(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # loading the original XML warns, and MuJoCo logs it to ./MUJOCO_LOG.TXT
    path = Path(gym.envs.mujoco.__file__).parent / "assets" / "half_cheetah.xml"
    original, ours = mujoco.MjModel.from_xml_path(str(path)), cheetah_model()
    for field in ("body_mass", "body_inertia", "body_subtreemass", "dof_invweight0", "actuator_acc0"):
        assert np.array_equal(getattr(original, field), getattr(ours, field)), field
    a, b = mujoco.MjData(original), mujoco.MjData(ours)
    controls = np.random.default_rng(0).uniform(-1, 1, (100, 6))
    for u in controls:
        a.ctrl[:] = b.ctrl[:] = u
        mujoco.mj_step(original, a, 5), mujoco.mj_step(ours, b, 5)
    assert np.array_equal(a.qpos, b.qpos) and np.array_equal(a.qvel, b.qvel)


@pytest.mark.filterwarnings("ignore:.*Box observation space:UserWarning")  # joint velocities are unbounded
@pytest.mark.parametrize("target, size", [("speed", 17), ("location", 18)])
def test_the_gymnasium_environments_are_standard_and_never_end_early(target, size):
    env = gym.make(IDS[target])
    check_env(env.unwrapped, skip_render_check=True)
    obs, info = env.reset(seed=0, options={"task": 1.25})
    assert obs.shape == (size,) and info["task"] == 1.25 == env.unwrapped.get_task()
    assert episode_length(env) == 100 and len(env.unwrapped.sample_tasks(4)) == 4


@pytest.mark.parametrize("target", ["speed", "location"])
def test_reward_and_observation_follow_their_definitions(target):
    sim = BatchedHalfCheetah(target, torch.tensor([0.7]))
    model = cheetah_model()
    qpos, qvel = np.zeros((1, model.nq)), np.zeros((1, model.nv))
    qpos[0, 0], qvel[0, 0] = 2.0, 1.0
    first = sim.set_state(qpos, qvel)
    action = torch.tensor([[0.5, -0.5, 0.2, 0.0, 1.0, -1.0]], dtype=torch.float64)
    obs, reward = sim.step(action)
    x_after = sim.qpos[0, 0]
    ctrl = 0.05 * float(action.pow(2).sum())
    if target == "speed":
        assert first.shape == (1, 17) and first[0, 8] == 1.0  # x excluded; qvel[0] follows qpos[1:]
        expected = -abs((x_after - 2.0) / 0.05 - 0.7) - ctrl
    else:
        assert first.shape == (1, 18) and first[0, 0] == 2.0 and first[0, 9] == 1.0
        expected = -abs(x_after - 0.7) - ctrl
    assert reward.item() == pytest.approx(expected, rel=1e-6)
    assert obs[0, 0 if target == "location" else 8].item() == pytest.approx(
        x_after if target == "location" else sim.qvel[0, 0], rel=1e-6)


@pytest.mark.parametrize("target", ["speed", "location"])
def test_batched_simulator_agrees_with_the_gymnasium_environment(target):
    tasks = torch.tensor([-1.2, 0.4, 1.9])
    envs = [PolicyScaleActions(gym.make(IDS[target]), policy_scale=10.0) for _ in tasks]
    for i, (env, task) in enumerate(zip(envs, tasks)):
        env.reset(seed=i, options={"task": float(task)})
    sim = BatchedHalfCheetah(target, tasks, threads=2)
    sim.set_state(np.stack([e.unwrapped.data.qpos for e in envs]), np.stack([e.unwrapped.data.qvel for e in envs]))
    actions = torch.randn(100, len(tasks), 6, generator=torch.Generator().manual_seed(2), dtype=torch.float64) * 8
    for t in range(100):
        steps = [env.step(a.numpy()) for env, a in zip(envs, actions[t])]
        observation, reward = sim.step(policy_to_env(actions[t], 10.0, 1.0))
        # the same physics to the bit; observations and rewards leave as float32
        assert np.array_equal(sim.qpos, np.stack([e.unwrapped.data.qpos for e in envs]))
        assert np.array_equal(sim.qvel, np.stack([e.unwrapped.data.qvel for e in envs]))
        torch.testing.assert_close(observation, torch.tensor(np.stack([s[0] for s in steps]), dtype=torch.float32))
        torch.testing.assert_close(reward, torch.tensor([s[1] for s in steps], dtype=torch.float32))
    assert all(s[3] for s in steps)  # both truncate at the horizon


def test_reset_draws_halfcheetah_v5_noise_from_the_generator():
    sim = BatchedHalfCheetah("location", torch.zeros(2000))
    first = sim.reset(torch.Generator().manual_seed(0))
    again = BatchedHalfCheetah("location", torch.zeros(2000)).reset(torch.Generator().manual_seed(0))
    assert torch.equal(first, again)
    qpos, qvel = first[:, :9], first[:, 9:]
    assert qpos.abs().max() <= 0.1 and abs(float(qpos.std()) - 0.1 / 3**0.5) < 0.005
    assert abs(float(qvel.std()) - 0.1) < 0.005


SMALL = ["tasks_per_mode=4", "model.rollouts=8", "model.policy.hidden_sizes=[32,32]", "model.policy.encoder_size=16",
         "data.val_tasks_per_mode=2", "data.test_tasks_per_mode=4", "data.eval_batch_size=8",
         "trainer.log_every_n_steps=1"]


def train(path: Path, task: str, *overrides: str) -> dict:
    return run(compose_train(path, f"task={task}", *SMALL, *overrides, fast=False))


def test_a_short_run_improves_the_return(tmp_path: Path):
    """50 MAML meta-iterations of 32 target-speed rollouts at Adam 0.01: the mean training return
    of the last ten is above that of the first ten (measured -158 -> -123; about a minute)."""
    results = train(tmp_path, "cheetah_speed", "method=maml", "meta_lr=0.01", "trainer.max_steps=50", "val_every=50")
    returns = [r for _, r in results["history"]["train"]]
    assert len(returns) == 50 and np.mean(returns[-10:]) > np.mean(returns[:10]) + 15


def test_a_policy_that_does_not_fit_the_environment_is_a_one_line_error(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"^model.policy.observation_size: cheetah_location has 18 \(got 17\)$"):
        train(tmp_path, "cheetah_location", "model.policy.observation_size=17")


def test_a_half_cheetah_run_resumes_exactly(tmp_path: Path):
    tiny = ["model.horizon=20", "model.rollouts=3", "tasks_per_mode=2", "val_every=2"]
    full = train(tmp_path / "full", "cheetah_location", *tiny, "trainer.max_steps=4")
    assert full["task"] == "cheetah_location" and len(full["test"]["return_by_step"]) == 3
    assert list(full["test"]["per_mode"]) == ["-5 m", "+5 m"]
    train(tmp_path / "split", "cheetah_location", *tiny, "trainer.max_steps=2")
    resumed = train(tmp_path / "split", "cheetah_location", *tiny, "trainer.max_steps=4",
                    f"ckpt_path={tmp_path / 'split'}")
    assert resumed["test"] == full["test"] and resumed["history"] == full["history"]
    assert (tmp_path / "full" / "rollouts.png").stat().st_size > 10_000
