"""Half-cheetah with a bimodal target speed or target location (paper §4.2, Figures 3b and 3c).

The original code never released these two environments; they are rebuilt from the upstream
ProMP half-cheetah environments and gymnasium's `HalfCheetah-v5` (its model, frame skip 5,
dt 0.05 and reset noise). Per step, with v the forward velocity (x_after - x_before) / dt and a
the environment-scale action:

- target speed:    r = -|v - v*| - ctrl_cost ||a||^2, observation without x (17-d);
- target location: r = -|x_after - x*| - ctrl_cost ||a||^2, observation with x (18-d).

v* and x* are drawn per task around two modes (default -1.5 / +1.5 m/s, sigma 0.5; -5 / +5 m,
sigma 1). Episodes never end early. These numbers are ours (the paper gives none); all are config
values.

Two implementations of the same dynamics: the gymnasium environments (registered as
`mumo/HalfCheetahTargetSpeed-v0` and `mumo/HalfCheetahTargetLocation-v0`) and
`BatchedHalfCheetah`, which steps every (task, rollout) pair of a meta-batch with MuJoCo's own
batched stepping (`mujoco.batch.Batch`, a thread pool over the simulations, bit-identical to
`mj_step`). `HalfCheetahTargetSpeed` / `HalfCheetahTargetLocation` are the environments as the
RL family sees them (`mumo.rl.tasks.RLEnvironment`).

The model is gymnasium's `half_cheetah.xml` compiled without its `settotalmass="14"` compiler
attribute (deprecated in MuJoCo 4, which warns on every load), followed by the calls that the
warning recommends, `mj_setTotalmass(model, 14)` and `mj_setConst`: the same masses, inertias
and trajectories, bit for bit (tested).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

import gymnasium as gym
import mujoco
import numpy as np
import torch
from gymnasium.envs.mujoco.half_cheetah_v5 import HalfCheetahEnv
from torch import Tensor

from mumo.rl.tasks import GaussianModes, TaskBatch

FRAME_SKIP = 5
TOTAL_MASS = 14.0
RESET_NOISE = 0.1  # qpos + U(-0.1, 0.1), qvel + 0.1 N(0, 1), as HalfCheetah-v5
HORIZON = 100


@functools.cache
def cheetah_model() -> mujoco.MjModel:
    """HalfCheetah-v5's model, compiled without the deprecated `settotalmass` attribute."""
    xml = (Path(gym.envs.mujoco.__file__).parent / "assets" / "half_cheetah.xml").read_text()
    model = mujoco.MjModel.from_xml_string(xml.replace(' settotalmass="14"', ""))
    mujoco.mj_setTotalmass(model, TOTAL_MASS)
    mujoco.mj_setConst(model, mujoco.MjData(model))
    return model


def reward(target: str, x_before: Tensor, x_after: Tensor, goal: Tensor, action: Tensor, dt: float,
           ctrl_cost: float) -> Tensor:
    """The per-step reward of every simulation [N] (see the module docstring)."""
    if target == "speed":
        error = ((x_after - x_before) / dt - goal).abs()
    else:
        error = (x_after - goal).abs()
    return -error - ctrl_cost * action.pow(2).sum(-1)


class HalfCheetahTargetEnv(HalfCheetahEnv):
    """One half-cheetah task as a gymnasium environment (target 'speed' or 'location').

    The task (v* or x*) is set with `set_task(value)` or `reset(options={"task": value})`, read
    with `get_task()`; `sample_tasks(n)` draws tasks from the environment's bimodal distribution.
    """

    def __init__(self, target: str = "speed", centres: Sequence[float] | None = None, noise_std: float | None = None,
                 ctrl_cost: float = 0.05, **kwargs) -> None:
        if target not in TARGETS:
            raise ValueError(f"target must be one of {', '.join(TARGETS)} (got {target})")
        self.target, self.ctrl_cost = target, ctrl_cost
        self.tasks = target_tasks(target, centres, noise_std)
        self.task = 0.0
        super().__init__(frame_skip=FRAME_SKIP, reset_noise_scale=RESET_NOISE,
                         exclude_current_positions_from_observation=target == "speed", **kwargs)

    def _initialize_simulation(self) -> tuple[mujoco.MjModel, mujoco.MjData]:
        model = cheetah_model()
        model.vis.global_.offwidth, model.vis.global_.offheight = self.width, self.height
        return model, mujoco.MjData(model)

    def sample_tasks(self, n: int) -> list[float]:
        """`n` tasks of the distribution, modes balanced (n must be a multiple of 2)."""
        generator = torch.Generator().manual_seed(int(self.np_random.integers(2**31)))
        return self.tasks.sample(n // self.tasks.modes, generator).params[:, 0].tolist()

    def set_task(self, task: float) -> None:
        self.task = float(task)

    def get_task(self) -> float:
        return self.task

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if options and "task" in options:
            self.set_task(options["task"])
        observation, info = super().reset(seed=seed)
        return observation, {**info, "task": self.task}

    def step(self, action):
        x_before = self.data.qpos[0]
        self.do_simulation(action, self.frame_skip)
        x_after = self.data.qpos[0]
        r = reward(self.target, torch.tensor(x_before), torch.tensor(x_after), torch.tensor(self.task),
                   torch.as_tensor(np.asarray(action, dtype=np.float64)), self.dt, self.ctrl_cost)
        info = {"x_position": x_after, "x_velocity": (x_after - x_before) / self.dt}
        return self._get_obs(), float(r), False, False, info


TARGETS = {
    "speed": {"centres": (-1.5, 1.5), "noise_std": 0.5, "unit": "m/s"},
    "location": {"centres": (-5.0, 5.0), "noise_std": 1.0, "unit": "m"},
}


def target_tasks(target: str, centres: Sequence[float] | None = None, noise_std: float | None = None) -> GaussianModes:
    """The bimodal distribution of v* or x*: `centres` and `noise_std`, or the target's defaults."""
    defaults = TARGETS[target]
    return GaussianModes(tuple((float(c),) for c in (centres or defaults["centres"])),
                         defaults["noise_std"] if noise_std is None else noise_std, defaults["unit"])

for _target in TARGETS:
    gym.register(f"mumo/HalfCheetahTarget{_target.capitalize()}-v0", entry_point=HalfCheetahTargetEnv,
                 max_episode_steps=HORIZON, kwargs={"target": _target})


class BatchedHalfCheetah:
    """N half-cheetahs stepped together by `mujoco.batch` on `threads` threads.

    State and actions are float64 numpy views of the batch; observations and rewards are returned
    as float32 torch tensors (the policy's precision).
    """

    action_size = 6

    def __init__(self, target: str, goals: Tensor, threads: int = 1, ctrl_cost: float = 0.05) -> None:
        from mujoco.batch import Batch

        self.model = cheetah_model()
        self.target, self.ctrl_cost = target, ctrl_cost
        self.goals = goals.double().view(-1)
        self.batch = Batch(self.model, nsim=len(self.goals), nthread=threads)
        self.qpos, self.qvel, self.ctrl = (self.batch.bind(name) for name in ("qpos", "qvel", "ctrl"))
        self.dt = self.model.opt.timestep * FRAME_SKIP

    def set_state(self, qpos: np.ndarray, qvel: np.ndarray) -> Tensor:
        """Put every simulation in the given state [N, nq], [N, nv]; its observations."""
        self.batch.reset()
        self.qpos[:], self.qvel[:] = qpos, qvel
        self.batch.forward()
        return self.observation()

    def reset(self, generator: torch.Generator | None = None) -> Tensor:
        """HalfCheetah-v5's reset distribution around the model's initial state, drawn from `generator`."""
        n, nq, nv = len(self.goals), self.model.nq, self.model.nv
        uniform = torch.rand(n, nq, generator=generator, dtype=torch.float64)
        normal = torch.randn(n, nv, generator=generator, dtype=torch.float64)
        qpos = self.model.qpos0 + RESET_NOISE * (2 * uniform.numpy() - 1)
        return self.set_state(qpos, RESET_NOISE * normal.numpy())

    def step(self, action: Tensor) -> tuple[Tensor, Tensor]:
        """(next observations [N, d], rewards [N]) for environment-scale actions [N, 6]."""
        action = action.double()
        x_before = torch.from_numpy(self.qpos[:, 0].copy())
        self.ctrl[:] = action.numpy()
        self.batch.step(nstep=FRAME_SKIP)
        x_after = torch.from_numpy(self.qpos[:, 0].copy())
        r = reward(self.target, x_before, x_after, self.goals, action, self.dt, self.ctrl_cost)
        return self.observation(), r.float()

    def observation(self) -> Tensor:
        first = 1 if self.target == "speed" else 0
        return torch.from_numpy(np.concatenate([self.qpos[:, first:], self.qvel], axis=1)).float()


class HalfCheetahTarget:
    """Half-cheetah target speed or location for the RL family: tasks, batched simulator, figure.

    Args:
        target: 'speed' or 'location'.
        modes: the number of modes (2 in the paper; one centre each).
        centres: the mode centres (m/s or m); default (-1.5, 1.5) for speed, (-5, 5) for location.
        noise_std: task noise around the centre; default 0.5 (speed) or 1.0 (location).
        ctrl_cost: weight of ||a||^2 in the reward.
    """

    action_size, action_limit = BatchedHalfCheetah.action_size, 1.0

    def __init__(self, target: str = "speed", modes: int = 2, centres: Sequence[float] | None = None,
                 noise_std: float | None = None, ctrl_cost: float = 0.05) -> None:
        self.tasks = target_tasks(target, centres, noise_std)
        if self.tasks.modes != modes:
            raise ValueError(f"centres: needs one centre per mode: {modes} (got {[c for c, in self.tasks.centres]})")
        self.target, self.ctrl_cost = target, ctrl_cost
        self.name, self.gym_id = f"cheetah_{target}", f"mumo/HalfCheetahTarget{target.capitalize()}-v0"
        model = cheetah_model()
        self.observation_size = model.nq + model.nv - (target == "speed")

    def batched(self, params: Tensor, threads: int = 1) -> BatchedHalfCheetah:
        return BatchedHalfCheetah(self.target, params, threads, self.ctrl_cost)

    def plot_rollouts(self, tasks: TaskBatch, observations: Sequence[Tensor], stage_names: Sequence[str],
                      path: Path) -> None:
        """One panel per task: the forward velocity (speed task) or x position (location task) of
        one rollout over time at every stage, with the task's target."""
        from mumo.plots import plt, save

        index = 8 if self.target == "speed" else 0  # qvel[0] after qpos[1:]; or qpos[0]
        label = "forward velocity (m/s)" if self.target == "speed" else "x position (m)"
        n = tasks.num_tasks
        fig, axes = plt.subplots(1, n, figsize=(3.6 * n, 3.4), squeeze=False, sharey=True)
        colors = plt.get_cmap("viridis")(torch.linspace(0, 0.9, len(stage_names)).tolist())
        dt = cheetah_model().opt.timestep * FRAME_SKIP
        for t, ax in enumerate(axes[0]):
            for name, color, obs in zip(stage_names, colors, observations):
                time = torch.arange(obs.shape[1]) * dt
                ax.plot(time, obs[t, :, index], color=color, lw=1.4, label=name)
            ax.axhline(float(tasks.params[t, 0]), color="tab:red", ls="--", lw=1.2, label="target")
            ax.set_title(f"test task {t + 1}, mode {self.tasks.mode_names[int(tasks.mode[t])]}", fontsize=10)
            ax.set_xlabel("time (s)")
            ax.grid(alpha=0.3)
        axes[0, 0].set_ylabel(label)
        handles, labels = axes[0, 0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="lower center", ncol=len(labels), frameon=False, fontsize=9)
        fig.suptitle(f"half-cheetah target {self.target}: one rollout per stage")
        save(fig, path, rect=(0, 0.1, 1, 0.95))
