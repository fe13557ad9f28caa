import pytest
import torch

from mumo.regression.functions import RegressionTasks
from mumo.regression.model import RegressionMetaModel
from mumo.core.modulation import FiLM, SigmoidAttention, SoftmaxAttention


def n_params(params) -> int:
    return sum(p.numel() for p in params)


def test_parameter_counts_match_the_original_networks():
    """Spec §2: MAML with 20-d bias transformation 22,521; gated net 20,501; LSTM 53,120."""
    maml = RegressionMetaModel(modulation="none", bias_transform=20)
    assert n_params(maml.base_parameters()) == 22_521 and maml.encoder is None
    film = RegressionMetaModel(modulation="film", modulated_layers=[0])
    assert n_params(film.base_parameters()) == 20_501
    assert n_params(film.encoder.parameters()) == 53_120
    assert n_params(film.heads.parameters()) == 16_200
    assert n_params(RegressionMetaModel(modulation="sigmoid").heads.parameters()) == 24_300
    assert n_params(RegressionMetaModel(modulation="film").heads.parameters()) == 48_600


def test_base_weights_use_small_normal_init_and_zero_bias():
    net = RegressionMetaModel(modulation="none").nets[0]
    w = net.layers[1].weight
    assert w.std().item() == pytest.approx(0.01, rel=0.05)
    assert all(layer.bias.abs().sum() == 0 for layer in net.layers)


def modulate(modulation, h: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
    return modulation(h, modulation.factors(tau))


def test_modulation_operations():
    h = torch.randn(3, 4, 6)
    zero = torch.zeros(3, 12)
    torch.testing.assert_close(modulate(FiLM(), h, zero), h)  # identity at tau = 0
    gamma, beta = torch.randn(3, 6), torch.randn(3, 6)
    torch.testing.assert_close(modulate(FiLM(), h, torch.cat([gamma, beta], -1)), h * (1 + gamma[:, None]) + beta[:, None])
    tau = torch.randn(3, 6)
    torch.testing.assert_close(modulate(SigmoidAttention(), h, tau), h * torch.sigmoid(tau)[:, None])
    weights = modulate(SoftmaxAttention(), torch.ones_like(h), tau)
    torch.testing.assert_close(weights.sum(-1), torch.ones(3, 4))  # normalised across the units




def test_batched_forward_equals_per_task_forward():
    torch.manual_seed(0)
    model = RegressionMetaModel(modulation="film", init_std=0.3)
    episode = RegressionTasks(2).sample(3, torch.Generator().manual_seed(0))
    cond = model.condition(episode)
    batched = model.predict(episode.query_x, model.initial_params(episode), cond)
    for t in range(episode.num_tasks):
        c = cond.select(t)
        single = model.nets[0](episode.query_x[t], c)
        torch.testing.assert_close(batched[t], single)


def test_encoder_reads_support_pairs_and_only_modulated_layers_get_tau():
    model = RegressionMetaModel(modulation="sigmoid", modulated_layers=[0, 2])
    episode = RegressionTasks(2).sample(2, torch.Generator().manual_seed(0))
    assert model.embed(episode).shape == (4, 80)
    assert [t.shape for t in model.taus(episode)] == [(4, 100), (4, 100)]
    assert [f.shape for (f,) in model.condition(episode).factors] == [(4, 1, 100), (4, 1, 100)]
    changed = episode._replace(support_y=episode.support_y + 1)
    assert not torch.allclose(model.embed(changed), model.embed(episode))
    changed_query = episode._replace(query_y=episode.query_y + 1, query_x=episode.query_x * 0)
    torch.testing.assert_close(model.embed(changed_query), model.embed(episode))  # support set only
