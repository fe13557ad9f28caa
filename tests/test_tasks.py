import math

import pytest
import torch

from mumo.regression.data import RegressionDataModule
from mumo.regression.functions import FAMILIES, RegressionTasks


def test_meta_batch_is_stratified_in_mode_order_with_requested_shapes():
    episode = RegressionTasks(modes=3, shots=5, queries=7).sample(4, torch.Generator().manual_seed(0))
    assert episode.support_x.shape == (12, 5, 1) and episode.query_y.shape == (12, 7, 1)
    assert episode.mode.tolist() == [0] * 4 + [1] * 4 + [2] * 4


@pytest.mark.parametrize("modes, names", [(2, ["sinusoid", "linear"]), (3, ["sinusoid", "linear", "quadratic"]),
                                          (5, ["sinusoid", "linear", "quadratic", "tanh", "abs"])])
def test_modes_select_the_paper_families(modes, names):
    assert RegressionTasks(modes).mode_names == names


def test_parameters_and_inputs_stay_in_the_spec_ranges():
    episode = RegressionTasks(5, noise_std=0.0).sample(2000, torch.Generator().manual_seed(1))
    x = torch.cat([episode.support_x, episode.query_x], 1)
    assert x.min() >= -5 and x.max() <= 5
    p = episode.params
    sin, lin, quad = p[episode.mode == 0], p[episode.mode == 1], p[episode.mode == 2]
    assert 0.1 <= sin[:, 0].min() and sin[:, 0].max() <= 5.0 and 0 <= sin[:, 1].min() and sin[:, 1].max() <= math.pi
    assert lin[:, :2].abs().max() <= 3.0
    assert 0.02 <= quad[:, 0].abs().min() and quad[:, 0].abs().max() <= 0.15
    assert (quad[:, 0] > 0).any() and (quad[:, 0] < 0).any()  # random sign


def test_targets_follow_the_formulas_without_noise():
    tasks = RegressionTasks(5, noise_std=0.0)
    e = tasks.sample(3, torch.Generator().manual_seed(2))
    a, phi = e.params[0, 0], e.params[0, 1]
    torch.testing.assert_close(e.support_y[0], a * torch.sin(e.support_x[0] - phi))
    slope, intercept = e.params[3, 0], e.params[3, 1]
    torch.testing.assert_close(e.query_y[3], slope * e.query_x[3] + intercept)
    k, c, b = e.params[12, :3]  # abs family
    torch.testing.assert_close(e.support_y[12], k * (e.support_x[12] - c).abs() + b)


def test_noise_is_on_every_target_with_the_configured_std():
    tasks = RegressionTasks(2, noise_std=0.3)
    e = tasks.sample(5000, torch.Generator().manual_seed(3))
    residual = torch.cat([e.support_y - tasks.true_function(e.mode, e.params, e.support_x),
                          e.query_y - tasks.true_function(e.mode, e.params, e.query_x)])
    assert residual.std().item() == pytest.approx(0.3, rel=0.02)


def test_zero_predictor_matches_the_analytic_level():
    """Spec §4.6: predicting 0 gives about 16.2 (2 modes) and 12.7 (3 modes)."""
    for modes, level in ((2, 16.2), (3, 12.68)):
        e = RegressionTasks(modes).sample(40000, torch.Generator().manual_seed(4))
        assert e.query_y.pow(2).mean().item() == pytest.approx(level, rel=0.02)


def test_fixed_sets_are_reproducible_and_independent_of_training_seed():
    a = RegressionDataModule(seed=0, test_tasks_per_mode=50).test_set()
    b = RegressionDataModule(seed=123, test_tasks_per_mode=50).test_set()
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y)
    val = RegressionDataModule(val_tasks_per_mode=50).val_set()
    assert not torch.equal(val.query_x, a.query_x)


def test_training_stream_is_seeded_and_resumes_at_the_first_unconsumed_batch():
    stream = RegressionDataModule(seed=7).train_stream
    it = iter(stream)
    first = next(it)
    stream.mark_consumed()  # trained on
    second = next(it)  # fetched ahead by the loader, not yet trained on
    state = stream.state_dict()
    again = RegressionDataModule(seed=7).train_stream
    torch.testing.assert_close(next(iter(again)).support_x, first.support_x)
    again.load_state_dict(state)
    torch.testing.assert_close(next(iter(again)).support_x, second.support_x)
    assert not torch.equal(first.support_x, second.support_x)


def test_family_table_order_is_fixed():
    assert [f.name for f in FAMILIES] == ["sinusoid", "linear", "quadratic", "tanh", "abs"]
