"""Meta-RL adaptation and ProMP's meta-objective, batched over tasks (paper §3.2; Rothfuss et
al., ProMP, 2019).

One meta-iteration, for T tasks at once (MuMoMAML's stage order; MAML skips the modulation):

    stage 0: R rollouts per task with theta, un-modulated -> D_0; tau = encoder(D_0)
             theta_1 = theta - alpha grad L_in(theta; D_0)            (un-modulated gradient)
    stage j: R rollouts with theta_j modulated by tau -> D_j
             theta_{j+1} = theta_j - alpha grad L_in(theta_j, tau; D_j)   (j < K)
    outer:   `num_promp_steps` Adam steps on J(theta, encoder) rebuilt from D_0..D_K

tau is computed once per task from D_0 and never adapted; the encoder gets its gradient through
stages >= 1 only. With `after_modulation_weight` > 0 (not in the paper) one more batch, D_mod, is
sampled with theta modulated by tau and no gradient step, and its clipped objective joins J: the
modulated prior itself is then trained, and the encoder gets a direct signal.

Per-task fast weights carry a leading task dimension and one `autograd.grad` of the summed
per-task losses gives every task's own gradient (`mumo.core.inner_sgd.InnerSGD.step`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from mumo.core.inner_sgd import InnerSGD
from mumo.core.low_rank import Params
from mumo.rl.advantages import task_advantages
from mumo.rl.tasks import RLEnvironment, TaskBatch, policy_to_env
from mumo.rl.policy import Factors, MetaPolicy, kl_divergence, log_prob


@dataclass
class Batch:
    """One stage's rollouts of every task, [T, R, H, ...], with what the sampling policy gave."""

    observations: Tensor  # [T, R, H, d]
    actions: Tensor  # [T, R, H, A], policy scale (what the encoder and the likelihoods see)
    rewards: Tensor  # [T, R, H]
    old_mean: Tensor  # [T, R, H, A]
    old_log_std: Tensor  # [T, 1, 1, A]
    mode: Tensor  # [T] true mode labels (Multi-MAML picks each task's policy by it)
    advantages: Tensor | None = None  # [T, R, H]

    @property
    def returns(self) -> Tensor:
        """Undiscounted return of every rollout [T, R]."""
        return self.rewards.sum(-1)

    def encoder_input(self) -> Tensor:
        """Per-step (s_t, a_t, r_t) of every rollout: [T, R, H, d + A + 1]."""
        return torch.cat([self.observations, self.actions, self.rewards.unsqueeze(-1)], dim=-1)


@torch.no_grad()
def collect(meta: MetaPolicy, params: Params, factors: Factors | None, env: RLEnvironment, tasks: TaskBatch,
            rollouts: int, horizon: int, policy_scale: float, generator: torch.Generator) -> Batch:
    """`rollouts` episodes of `horizon` steps for every task with its own policy, all (task,
    rollout) pairs stepped together by the environment's batched simulator."""
    mode = tasks.mode
    sim = env.batched(tasks.params.repeat_interleave(rollouts, dim=0), threads=torch.get_num_threads())
    tasks = tasks.num_tasks
    obs = sim.reset(generator)
    observations, actions, rewards, means = [], [], [], []
    log_std = None
    for _ in range(horizon):
        mean, log_std = meta.policy(obs.view(tasks, rollouts, -1), params, factors)
        noise = torch.randn(mean.shape, generator=generator, dtype=mean.dtype)
        action = mean + log_std.exp() * noise
        observations.append(obs.view(tasks, rollouts, -1))
        obs, reward = sim.step(policy_to_env(action.view(tasks * rollouts, -1), policy_scale, env.action_limit))
        actions.append(action), rewards.append(reward.view(tasks, rollouts)), means.append(mean)
    batch = Batch(torch.stack(observations, 2), torch.stack(actions, 2), torch.stack(rewards, 2),
                  torch.stack(means, 2), log_std.unsqueeze(1).clone(), mode)  # log-std: not a view of theta
    batch.advantages = task_advantages(batch.observations, batch.rewards)
    return batch


def distribution(meta: MetaPolicy, params: Params, factors: Factors | None, batch: Batch) -> tuple[Tensor, Tensor]:
    """The policy's means [T, R, H, A] and log-stds [T, 1, 1, A] on a batch's observations."""
    tasks, rollouts, horizon, size = batch.observations.shape
    mean, log_std = meta.policy(batch.observations.reshape(tasks, rollouts * horizon, size), params, factors)
    return mean.view(*batch.actions.shape), log_std.unsqueeze(1)


def likelihood_ratio(mean: Tensor, log_std: Tensor, batch: Batch) -> Tensor:
    """pi(a | s) / pi_old(a | s) on every sample [T, R, H], pi given by its means and log-stds."""
    return torch.exp(log_prob(batch.actions, mean, log_std) - log_prob(batch.actions, batch.old_mean, batch.old_log_std))


def surrogate(mean: Tensor, log_std: Tensor, batch: Batch) -> Tensor:
    """Sum over tasks of each task's likelihood-ratio surrogate -mean(ratio * A). Its gradient at
    the sampling policy is the policy gradient; differentiating through it gives ProMP's
    low-variance curvature estimate."""
    return -(likelihood_ratio(mean, log_std, batch) * batch.advantages).flatten(1).mean(1).sum()


def inner_loss(meta: MetaPolicy, params: Params, factors: Factors | None, batch: Batch) -> Tensor:
    """The inner objective (`surrogate`) of the policy with `params` and `factors` on `batch`."""
    return surrogate(*distribution(meta, params, factors, batch), batch)


def stage_factors(factors: Factors | None, stage: int) -> Factors | None:
    """Stage 0 runs un-modulated (its data is what tau is computed from); later stages modulated."""
    return factors if stage >= 1 else None


@dataclass
class ProMP:
    """ProMP's meta-objective with MuMoMAML's stage order.

    Args:
        inner_loop: the adaptation step (steps K, alpha; no clamp in the original).
        clip_eps: epsilon of the clipped outer objective on the last stage's data.
        inner_kl_penalty: eta, the weight of each inner stage's KL(pi_old || pi_theta_j) (fixed).
        after_modulation_weight: weight of the clipped objective of theta modulated by tau, before
            any gradient step, on its own batch (0: the paper's objective, which never trains
            that policy).
    """

    inner_loop: InnerSGD
    clip_eps: float = 0.1
    inner_kl_penalty: float = 5e-4
    after_modulation_weight: float = 0.0

    def adapt(self, meta: MetaPolicy, params: Params, factors: Factors | None, batch: Batch, stage: int,
              create_graph: bool) -> Params:
        """theta_{stage+1} from theta_stage and the stage's batch."""
        loss = inner_loss(meta, params, stage_factors(factors, stage), batch)
        return self.inner_loop.step(loss, params, create_graph=create_graph)

    def clipped_objective(self, meta: MetaPolicy, params: Params, factors: Factors | None, batch: Batch) -> Tensor:
        """PPO's clipped surrogate, mean over the batch's samples: min(rho A, clip(rho) A)."""
        ratio = likelihood_ratio(*distribution(meta, params, factors, batch), batch)
        return torch.min(ratio * batch.advantages,
                         ratio.clamp(1 - self.clip_eps, 1 + self.clip_eps) * batch.advantages).mean()

    def meta_loss(self, meta: MetaPolicy, batches: list[Batch], modulated: Batch | None = None) -> Tensor:
        """J: mean over tasks of the clipped surrogate on the last stage, plus eta times each inner
        stage's mean KL, rebuilt from theta (and tau from the first stage) with second-order terms;
        with `modulated` (D_mod), minus `after_modulation_weight` times its clipped surrogate."""
        factors = meta.condition(batches[0].encoder_input())
        params = initial = meta.initial_params(batches[0].mode)
        kl = 0.0
        for stage, batch in enumerate(batches[:-1]):  # one forward pass per stage serves the KL and the step
            mean, log_std = distribution(meta, params, stage_factors(factors, stage), batch)
            kl = kl + kl_divergence(batch.old_mean, batch.old_log_std, mean, log_std).mean()
            params = self.inner_loop.step(surrogate(mean, log_std, batch), params, create_graph=True)
        loss = -self.clipped_objective(meta, params, stage_factors(factors, len(batches) - 1), batches[-1])
        if modulated is not None:
            loss = loss - self.after_modulation_weight * self.clipped_objective(meta, initial, factors, modulated)
        return loss + self.inner_kl_penalty * kl / max(len(batches) - 1, 1)


@dataclass
class Stages:
    """The rollouts of one meta-iteration: stages 0..K (theta adapted between them) and, when
    asked for, the batch sampled right after modulation (theta with tau, no gradient step; for
    MAML a second stage-0 batch)."""

    batches: list[Batch]
    modulated: Batch | None = None

    def timeline(self) -> list[Batch]:
        """Before modulation, after modulation (when sampled), after each step: the order in which
        evaluation reports them."""
        return [self.batches[0], *[b for b in (self.modulated,) if b is not None], *self.batches[1:]]


def sample_stages(algo: ProMP, meta: MetaPolicy, env: RLEnvironment, tasks: TaskBatch, rollouts: int, horizon: int,
                  policy_scale: float, generator: torch.Generator, steps: int | None = None,
                  after_modulation: bool = False) -> Stages:
    """Stages 0..K of one meta-iteration (K = `steps`, default the inner loop's), adapting every
    task's fast weights between stages without second-order terms; with `after_modulation`, also
    the after-modulation batch (sampled right after stage 0)."""
    steps = algo.inner_loop.steps if steps is None else steps
    params = meta.initial_params(tasks.mode)
    factors, stages = None, Stages([])
    for stage in range(steps + 1):
        batch = collect(meta, params, stage_factors(factors, stage), env, tasks, rollouts, horizon, policy_scale,
                        generator)
        stages.batches.append(batch)
        if stage == 0:
            with torch.no_grad():
                factors = meta.condition(batch.encoder_input())
            if after_modulation:
                stages.modulated = collect(meta, params, factors, env, tasks, rollouts, horizon, policy_scale,
                                           generator)
        if stage < steps:
            with torch.enable_grad():
                adapted = algo.adapt(meta, params, factors, batch, stage, create_graph=False)
                params = {k: v.detach().requires_grad_() for k, v in adapted.items()}
    return stages
