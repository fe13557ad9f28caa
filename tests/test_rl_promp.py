"""The meta-RL inner step and ProMP objective: the policy gradient at the sampling policy, batched
tasks = one task at a time, MuMoMAML's stage order (tau from stage 0, reaching the encoder only
through later stages), and modulation with tau = 0 = no modulation."""

import pytest
import torch

from mumo.core.inner_sgd import InnerSGD
from mumo.rl.navigation import Navigation
from mumo.rl.tasks import TaskBatch
from mumo.rl.policy import MetaPolicy, log_prob
from mumo.rl.promp import Batch, ProMP, Stages, distribution, inner_loss, sample_stages

TASKS, ROLLOUTS, HORIZON = 4, 3, 12


def sample(modulation: str = "film", steps: int = 1, seed: int = 0, per_mode_nets: int = 0,
           after_modulation: bool = False) -> tuple[MetaPolicy, ProMP, Stages]:
    torch.manual_seed(seed)
    meta = MetaPolicy(4, 2, hidden_sizes=(16, 16), modulation=modulation, per_mode_nets=per_mode_nets,
                      encoder_size=8).double()
    algo = ProMP(InnerSGD(steps=steps, lr=0.05))
    generator = torch.Generator().manual_seed(seed)
    env = Navigation(modes=2)
    goals, mode = env.tasks.sample(TASKS // 2, generator)
    stages = sample_stages(algo, meta, env, TaskBatch(goals.double(), mode), ROLLOUTS, HORIZON, 10.0, generator,
                           after_modulation=after_modulation)
    return meta, algo, stages


def setup(modulation: str = "film", steps: int = 1, seed: int = 0,
          per_mode_nets: int = 0) -> tuple[MetaPolicy, ProMP, list[Batch]]:
    """The policy, ProMP and the stages' batches, stage 0 first."""
    meta, algo, stages = sample(modulation, steps, seed, per_mode_nets)
    return meta, algo, stages.batches


def select(batch: Batch, task: int) -> Batch:
    part = slice(task, task + 1)
    return Batch(batch.observations[part], batch.actions[part], batch.rewards[part], batch.old_mean[part],
                 batch.old_log_std[part], batch.mode[part], batch.advantages[part])


def test_stages_have_the_configured_shapes_and_the_sampling_distribution():
    meta, _, batches = setup(steps=2)
    assert len(batches) == 3
    for batch in batches:
        assert batch.observations.shape == (TASKS, ROLLOUTS, HORIZON, 4) and batch.actions.shape == (TASKS, ROLLOUTS, HORIZON, 2)
        assert batch.rewards.shape == batch.advantages.shape == (TASKS, ROLLOUTS, HORIZON)
    # stage 0 was sampled by theta itself: rebuilding its distribution gives the recorded one
    mean, log_std = distribution(meta, meta.initial_params(batches[0].mode), None, batches[0])
    torch.testing.assert_close(mean, batches[0].old_mean)
    torch.testing.assert_close(log_std, batches[0].old_log_std)


def test_the_inner_step_at_the_sampling_policy_is_the_policy_gradient():
    meta, _, (batch, _) = setup()
    params = meta.initial_params(batch.mode)
    surrogate = torch.autograd.grad(inner_loss(meta, params, None, batch), list(params.values()))
    mean, log_std = distribution(meta, params, None, batch)
    reinforce = -(log_prob(batch.actions, mean, log_std) * batch.advantages).flatten(1).mean(1).sum()
    for a, b in zip(surrogate, torch.autograd.grad(reinforce, list(params.values()))):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("modulation, per_mode_nets", [("film", 0), ("none", 0), ("none", 2)],
                         ids=["mumomaml", "maml", "multi_maml"])
def test_batched_tasks_equal_one_task_at_a_time(modulation, per_mode_nets):
    """The meta-loss over T tasks is the mean of the per-task meta-losses, value and meta-gradient
    (second order through the inner step)."""
    meta, algo, batches = setup(modulation, per_mode_nets=per_mode_nets)
    loss = algo.meta_loss(meta, batches)
    grads = torch.autograd.grad(loss, list(meta.parameters()))
    per_task = [algo.meta_loss(meta, [select(b, t) for b in batches]) for t in range(TASKS)]
    torch.testing.assert_close(loss, torch.stack(per_task).mean(), rtol=1e-9, atol=1e-15)  # ~0 at theta_old
    expected = torch.autograd.grad(torch.stack(per_task).mean(), list(meta.parameters()))
    for (name, _), a, b in zip(meta.named_parameters(), grads, expected):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12, msg=name)


def test_the_encoder_learns_only_through_the_stages_after_the_first():
    meta, algo, batches = setup(steps=1)
    factors = meta.condition(batches[0].encoder_input())
    params = meta.initial_params(batches[0].mode)
    stage0 = inner_loss(meta, params, None, batches[0])  # stage 0 is un-modulated: tau is not in it
    assert all(g is None for g in torch.autograd.grad(stage0, meta.encoder_parameters(), allow_unused=True))
    adapted = algo.adapt(meta, params, factors, batches[0], stage=0, create_graph=True)
    stage1 = inner_loss(meta, adapted, factors, batches[1])
    grads = torch.autograd.grad(stage1, meta.encoder_parameters())
    assert all(g.abs().sum() > 0 for g in grads)
    grads = torch.autograd.grad(algo.meta_loss(meta, batches), meta.encoder_parameters())
    assert all(g.abs().sum() > 0 for g in grads)


def test_the_after_modulation_objective_trains_the_modulated_prior_and_the_encoder():
    """after_modulation_weight w adds -w x the clipped surrogate of theta modulated by tau, on the
    batch that policy sampled (sampled right after stage 0, reported second), to J; its gradient
    reaches the encoder without any inner step."""
    meta, algo, sampled = sample(steps=1, after_modulation=True)
    stages, modulated = sampled.batches, sampled.modulated
    assert len(stages) == 2 and all(a is b for a, b in zip(sampled.timeline(), [stages[0], modulated, stages[1]]))
    factors = meta.condition(stages[0].encoder_input())
    params = meta.initial_params(modulated.mode)
    mean, log_std = distribution(meta, params, factors, modulated)  # sampled by theta with tau, no step
    torch.testing.assert_close(mean, modulated.old_mean)
    torch.testing.assert_close(log_std, modulated.old_log_std)
    weighted = ProMP(algo.inner_loop, after_modulation_weight=0.5)
    extra = weighted.clipped_objective(meta, params, factors, modulated)
    torch.testing.assert_close(weighted.meta_loss(meta, stages, modulated), algo.meta_loss(meta, stages) - 0.5 * extra,
                               rtol=1e-12, atol=1e-12)
    assert all(g.abs().sum() > 0 for g in torch.autograd.grad(extra, meta.encoder_parameters()))


def test_film_with_tau_zero_is_the_unmodulated_policy():
    meta, _, (batch, _) = setup()
    modulation = meta.policy.mean.modulation
    zero = tuple(modulation.factors(torch.zeros(TASKS, size, dtype=torch.float64)) for size in meta.policy.tau_sizes())
    params = meta.initial_params(batch.mode)
    torch.testing.assert_close(distribution(meta, params, zero, batch), distribution(meta, params, None, batch),
                               rtol=0, atol=0)


def test_maml_has_no_encoder_and_no_modulation():
    meta, algo, batches = setup("none", steps=2)
    assert meta.encoder is None and meta.condition(batches[0].encoder_input()) is None
    assert torch.isfinite(algo.meta_loss(meta, batches))


def test_multi_maml_adapts_each_task_from_the_policy_of_its_mode():
    meta, algo, batches = setup("none", per_mode_nets=2)
    mode = batches[0].mode
    params = meta.initial_params(mode)
    for t in range(TASKS):
        own = meta.policies[int(mode[t])]
        assert torch.equal(params["layers.0.weight"][t], own.mean.layers[0].weight)
    grads = torch.autograd.grad(algo.meta_loss(meta, batches), [p for p in meta.policies.parameters()])
    assert all(g.abs().sum() > 0 for g in grads)  # both modes' policies learn
    assert meta.method == "multi_maml"
