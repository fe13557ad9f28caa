"""The convolutional base network: per-task weights in one grouped convolution equal a loop over
tasks, per-task BatchNorm statistics, per-channel modulation, and the inner step's gradients."""

import pytest
import torch

from mumo.core.convnet import ConvNet, batch_norm
from mumo.core.engines import CrossEntropy
from mumo.core.inner_sgd import InnerSGD
from mumo.core.modulation import Condition, get_modulation

TASKS, IMAGES = 3, 6


def setup(modulation: str = "film", seed: int = 0):
    torch.manual_seed(seed)
    net = ConvNet(in_channels=3, channels=(4, 6, 8, 8), num_classes=5, modulation=get_modulation(modulation),
                  modulated_layers=[0, 1, 2, 3] if modulation != "none" else []).double()
    x = torch.randn(TASKS, IMAGES, 3, 16, 16, dtype=torch.float64)
    factors = None
    if net.modulation is not None:
        factors = tuple(net.modulation.factors(torch.randn(TASKS, size, dtype=torch.float64))
                        for size in net.tau_sizes())
    params = {n: (p + 0.1 * torch.randn(TASKS, *p.shape, dtype=p.dtype)) for n, p in net.named_parameters()}
    return net, x, Condition(factors), params


@pytest.mark.parametrize("modulation", ["none", "softmax", "sigmoid", "film"])
def test_batched_per_task_forward_equals_a_loop_over_tasks(modulation):
    net, x, condition, params = setup(modulation)
    batched = net(x, condition, params=params)
    assert batched.shape == (TASKS, IMAGES, 5)
    for t in range(TASKS):
        own = {n: p[t] for n, p in params.items()}
        single = torch.func.functional_call(net, own, (x[t],), {"condition": condition.select(slice(t, t + 1))})
        torch.testing.assert_close(batched[t], single, rtol=1e-12, atol=1e-12)
    shared = net(x, condition)  # the module's own weights for every task
    torch.testing.assert_close(shared[1], net(x[1], condition.select(slice(1, 2))), rtol=1e-12, atol=1e-12)


def test_batch_norm_uses_each_tasks_own_statistics():
    h = torch.randn(2, 5, 3, 4, 4, dtype=torch.float64) * torch.tensor([1.0, 10.0]).view(2, 1, 1, 1, 1)
    out = batch_norm(h)
    assert out.mean(dim=(1, 3, 4)).abs().max() < 1e-12
    assert (out.var(dim=(1, 3, 4), unbiased=False) - 1).abs().max() < 1e-4


def test_film_modulates_each_channel_and_zero_tau_is_the_identity():
    net, x, _, params = setup("film")
    zero = Condition(tuple(net.modulation.factors(torch.zeros(TASKS, size, dtype=torch.float64))
                           for size in net.tau_sizes()))
    torch.testing.assert_close(net(x, zero, params=params), ConvNet.forward(net, x, None, params=params))


def test_one_inner_step_gives_every_task_its_own_gradient():
    net, x, condition, params = setup("film")
    labels = torch.randint(0, 5, (TASKS, IMAGES))
    loss = CrossEntropy()
    inner = InnerSGD(steps=1, lr=0.1, grad_clamp=0.5)
    adapted = inner.step(loss.summed(net(x, condition, params=params), labels), params, create_graph=False)
    for t in range(TASKS):
        own = {n: p[t].detach().requires_grad_() for n, p in params.items()}
        task_loss = loss(net(x[t], condition.select(slice(t, t + 1)), params=own), labels[t])
        grads = torch.autograd.grad(task_loss, list(own.values()))
        for (name, p), g in zip(own.items(), grads):
            torch.testing.assert_close(adapted[name][t], p - 0.1 * g.clamp(-0.5, 0.5), rtol=1e-10, atol=1e-12)


def test_parameter_count_matches_the_original_task_network():
    net = ConvNet(in_channels=3, channels=(32, 64, 128, 256), num_classes=5)
    assert sum(p.numel() for p in net.parameters()) == 389_701
    assert sum(p.numel() for p in ConvNet(num_classes=20).parameters()) == 393_556
