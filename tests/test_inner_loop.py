"""The batched engine and learn2learn's clone/adapt give the same meta-loss and meta-gradients."""

import pytest
import torch

from mumo.core.episode import Episode
from mumo.regression.functions import RegressionTasks
from mumo.core.engines import MSE, BatchedEngine, make_engine
from mumo.core.inner_sgd import InnerSGD
from mumo.regression.model import RegressionMetaModel
from mumo.core.low_rank import LowRankWeight

WEIGHT_UPDATES = ["dense", "low_rank"]


def episode64(modes: int = 2, per_mode: int = 3) -> Episode:
    e = RegressionTasks(modes).sample(per_mode, torch.Generator().manual_seed(0))
    return Episode(*(f.double() if f.is_floating_point() else f for f in e))


def meta_loss_and_grads(engine: str, model: RegressionMetaModel, loop: InnerSGD, episode: Episode, weight_updates="dense"):
    model.zero_grad()
    loss = make_engine(engine, loop, MSE(), weight_updates).query_loss(model, episode, create_graph=True).mean()
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}


def assert_engines_agree(model: RegressionMetaModel, loop: InnerSGD, episode: Episode, weight_updates: str) -> dict:
    """The batched engine's meta-loss and meta-gradients equal learn2learn's; returns the gradients."""
    loss_b, grads_b = meta_loss_and_grads("batched", model, loop, episode, weight_updates)
    loss_l, grads_l = meta_loss_and_grads("l2l", model, loop, episode)
    torch.testing.assert_close(loss_b, loss_l, rtol=1e-12, atol=0)
    for name in grads_b:
        torch.testing.assert_close(grads_b[name], grads_l[name], rtol=1e-9, atol=1e-12, msg=name)
    return grads_b


def as_dense(weight, num_tasks: int = 6) -> torch.Tensor:
    return weight.dense(num_tasks) if isinstance(weight, LowRankWeight) else weight


def build(modulation: str, **kwargs) -> RegressionMetaModel:
    torch.manual_seed(0)
    # A larger init than the paper's 0.01 makes second-order terms and tau's effect non-negligible.
    return RegressionMetaModel(modulation=modulation, init_std=0.3, **kwargs).double()


CASES = [("none", {"bias_transform": 20}), ("softmax", {}), ("sigmoid", {"modulated_layers": [0]}), ("film", {}),
         ("none", {"bias_transform": 20, "per_mode_nets": 2})]


@pytest.mark.parametrize("weight_updates", WEIGHT_UPDATES)
@pytest.mark.parametrize("first_order", [False, True], ids=["second_order", "first_order"])
@pytest.mark.parametrize("modulation, kwargs", CASES, ids=[c[0] + ("_multi" if "per_mode_nets" in c[1] else "") for c in CASES])
def test_batched_and_l2l_engines_agree(modulation, kwargs, first_order, weight_updates):
    model = build(modulation, **kwargs)
    loop = InnerSGD(steps=3, lr=0.01, first_order=first_order, grad_clamp=None if modulation == "none" else 10.0)
    assert_engines_agree(model, loop, episode64(), weight_updates)


@pytest.mark.parametrize("weight_updates", WEIGHT_UPDATES)
@pytest.mark.parametrize("grad_clamp", [None, 0.5, 200.0], ids=["no_clamp", "clamp_all", "clamp_one_task"])
def test_per_mode_inner_rates_and_steps_agree_with_l2l(weight_updates, grad_clamp):
    """Multi-MAML with its own alpha and steps per mode, dense or low-rank weights; the clamp cuts
    every task's gradient (low-rank layers turn dense) or one task's (a per-task dense correction)."""
    model = build("none", bias_transform=20, per_mode_nets=2)
    loop = InnerSGD(steps=3, lr=0.01, grad_clamp=grad_clamp, lr_per_mode=[0.03, 0.005], steps_per_mode=[1, 3])
    episode = episode64()
    grads = assert_engines_agree(model, loop, episode, weight_updates)
    _, plain = meta_loss_and_grads("batched", model, InnerSGD(steps=3, lr=0.01, grad_clamp=grad_clamp), episode)
    assert not torch.allclose(grads["nets.0.layers.0.weight"], plain["nets.0.layers.0.weight"])


@pytest.mark.parametrize("modulation, kwargs", CASES[1::3], ids=["softmax", "multi"])
def test_engines_predict_the_same_adapted_fits(modulation, kwargs):
    """Figures come from the run's engine: both give the same curves before and after adaptation."""
    model = build(modulation, **kwargs)
    loop = InnerSGD(steps=3, lr=0.01, grad_clamp=10.0)
    episode = episode64()
    grid = torch.linspace(-5, 5, 7, dtype=torch.float64).view(1, -1, 1).expand(episode.num_tasks, -1, -1)
    with torch.enable_grad():
        batched = make_engine("batched", loop, MSE()).predict_adapted(model, episode, grid)
        l2l = make_engine("l2l", loop, MSE()).predict_adapted(model, episode, grid)
    for b, ref in zip(batched, l2l):
        torch.testing.assert_close(b, ref, rtol=1e-10, atol=1e-12)
    assert not torch.allclose(*batched)  # adaptation moved the fit


def test_second_order_terms_are_present_and_reach_the_encoder():
    model = build("film")
    episode = episode64()
    _, second = meta_loss_and_grads("batched", model, InnerSGD(steps=3, lr=0.01), episode)
    _, first = meta_loss_and_grads("batched", model, InnerSGD(steps=3, lr=0.01, first_order=True), episode)
    w = "nets.0.layers.1.weight"
    assert not torch.allclose(second[w], first[w])
    assert second["encoder.lstm.weight_ih_l0"].abs().sum() > 0
    assert second["heads.heads.0.weight"].abs().sum() > 0


@pytest.mark.parametrize("weight_updates", WEIGHT_UPDATES)
def test_grad_clamp_limits_each_inner_update(weight_updates):
    model = build("film")
    episode = episode64()
    loop = InnerSGD(steps=1, lr=1.0, grad_clamp=0.001)
    engine = BatchedEngine(loop, MSE(), weight_updates)
    theta0, theta1 = engine.adapt(model, episode, model.condition(episode), create_graph=False)
    assert isinstance(theta0["layers.1.weight"], LowRankWeight) == (weight_updates == "low_rank")
    for name in theta0:
        assert (as_dense(theta1[name]) - as_dense(theta0[name])).abs().max() <= 0.001 + 1e-12


def test_tau_is_computed_once_and_not_adapted():
    model = build("film")
    episode = episode64()
    calls = []
    model.encoder.register_forward_hook(lambda *args: calls.append(1))
    steps = list(BatchedEngine(InnerSGD(steps=4, lr=0.01), MSE()).adapt(model, episode, model.condition(episode), create_graph=False))
    assert len(calls) == 1
    adapted = set(steps[-1])
    assert adapted == {n for n, _ in model.nets[0].named_parameters()}  # base-net weights only


def test_zero_steps_is_the_prior_and_all_steps_are_recorded():
    model = build("sigmoid")
    episode = episode64()
    engine = BatchedEngine(InnerSGD(steps=0), MSE())
    assert engine.query_loss(model, episode, create_graph=False, all_steps=True).shape == (1, 6)
    all_steps = BatchedEngine(InnerSGD(steps=4, lr=0.01), MSE()).query_loss(model, episode, create_graph=False, all_steps=True)
    assert all_steps.shape == (5, 6)
    torch.testing.assert_close(all_steps[0], engine.query_loss(model, episode, create_graph=False)[0])




def per_task_max_inner_grad(model: RegressionMetaModel, episode: Episode, name: str) -> torch.Tensor:
    """max_ij |dL_t/dW_ij| of each task's first inner step (an unclamped step at lr 1)."""
    theta0, theta1 = BatchedEngine(InnerSGD(steps=1, lr=1.0), MSE(), "dense").adapt(
        model, episode, model.condition(episode), create_graph=False
    )
    return (theta0[name] - theta1[name]).abs().flatten(1).amax(1)


@pytest.mark.parametrize("weight_updates, dense_switch", [("dense", None), ("low_rank", 1.0), ("low_rank", 0.0)],
                         ids=["dense", "low_rank_corrected", "low_rank_turns_dense"])
def test_clamp_active_on_some_tasks_gives_the_same_meta_gradients_as_learn2learn(weight_updates, dense_switch, monkeypatch):
    """The clamp (fused node; low-rank step + correction on the clamped tasks; or a low-rank layer
    that turns dense) against learn2learn with torch's own clamp, at a clamp value that cuts some
    tasks' gradients only."""
    if dense_switch is not None:
        monkeypatch.setattr("mumo.core.inner_sgd.DENSE_SWITCH", dense_switch)
    model = build("film")
    episode = episode64()
    max_grad = per_task_max_inner_grad(model, episode, "layers.1.weight")
    clamp = max_grad.median().item()
    clamped = max_grad > clamp
    assert clamped.any() and not clamped.all()
    loop = InnerSGD(steps=2, lr=0.01, grad_clamp=clamp)
    theta0, theta1, _ = BatchedEngine(loop, MSE(), weight_updates).adapt(model, episode, model.condition(episode), create_graph=False)
    step = (as_dense(theta1["layers.1.weight"]) - as_dense(theta0["layers.1.weight"])).abs().flatten(1).amax(1)
    torch.testing.assert_close(step, torch.minimum(max_grad, torch.tensor(clamp, dtype=step.dtype)) * 0.01)
    if dense_switch == 1.0:
        (index, _), = theta1["layers.1.weight"].corrections
        assert index.tolist() == clamped.nonzero().squeeze(1).tolist()  # a dense correction for those tasks only
    elif dense_switch == 0.0:
        assert isinstance(theta1["layers.1.weight"], torch.Tensor)
    loss_b, grads_b = meta_loss_and_grads("batched", model, loop, episode, weight_updates)
    loss_l, grads_l = meta_loss_and_grads("l2l", model, loop, episode)
    torch.testing.assert_close(loss_b, loss_l, rtol=1e-12, atol=0)
    for name in grads_b:
        torch.testing.assert_close(grads_b[name], grads_l[name], rtol=1e-9, atol=1e-12, msg=name)


def test_low_rank_and_dense_weight_updates_agree_in_float32():
    torch.manual_seed(0)
    model = RegressionMetaModel(modulation="film")
    episode = RegressionTasks(2).sample(25, torch.Generator().manual_seed(1))
    loop = InnerSGD(steps=5, lr=0.001, grad_clamp=10.0)
    results = {}
    for weight_updates in WEIGHT_UPDATES:
        model.zero_grad()
        mse = make_engine("batched", loop, MSE(), weight_updates).query_loss(model, episode, create_graph=True, all_steps=True)
        mse[-1].mean().backward()
        results[weight_updates] = mse.detach(), [p.grad.clone() for p in model.parameters()]
    (mse_d, grads_d), (mse_l, grads_l) = results.values()
    torch.testing.assert_close(mse_l, mse_d, rtol=1e-5, atol=1e-6)
    for g_l, g_d in zip(grads_l, grads_d):
        torch.testing.assert_close(g_l, g_d, rtol=1e-4, atol=1e-6)
