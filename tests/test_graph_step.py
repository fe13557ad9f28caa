"""The graph step (manual optimisation on static buffers; a CUDA graph on GPUs) equals the eager path."""

from pathlib import Path

import lightning as L
import pytest
import torch
from helpers import compose_train

from mumo.config import instantiate
from mumo.regression.functions import RegressionTasks
from mumo.errors import NonFiniteLossError
from mumo.train import build_trainer, run


class RecordLosses(L.Callback):
    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        self.losses.append(float(loss))


def train_steps(tmp_path: Path, *overrides: str) -> tuple[list[float], dict[str, torch.Tensor]]:
    cfg = compose_train(tmp_path, "trainer.max_steps=20", "val_every=100", "tasks_per_mode=5", "inner_steps=3",
                        "logger=none", *overrides)
    L.seed_everything(cfg.seed, verbose=False)
    datamodule = instantiate(cfg.data)
    module = instantiate(cfg.model, **datamodule.learner_inputs())
    recorder = RecordLosses()
    trainer = build_trainer(cfg)
    trainer.callbacks.append(recorder)
    trainer.fit(module, datamodule=datamodule)
    return recorder.losses, {k: v.detach().cpu() for k, v in module.state_dict().items()}


@pytest.mark.parametrize("modulation", ["film", "none"])
def test_graph_step_matches_the_eager_path_on_the_cpu(tmp_path: Path, modulation: str):
    eager_losses, eager_params = train_steps(tmp_path / "eager", f"modulation={modulation}", "graph_step=false")
    graph_losses, graph_params = train_steps(tmp_path / "graph", f"modulation={modulation}", "graph_step=true")
    assert len(eager_losses) == len(graph_losses) == 20
    assert graph_losses == pytest.approx(eager_losses, rel=1e-6)
    for name, value in eager_params.items():
        torch.testing.assert_close(graph_params[name], value, rtol=1e-6, atol=1e-8, msg=name)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("modulation", ["film", "none"])
def test_cuda_graph_matches_the_eager_path_on_the_gpu(tmp_path: Path, modulation: str):
    eager_losses, eager_params = train_steps(tmp_path / "eager", f"modulation={modulation}", "trainer=gpu",
                                             "graph_step=false")
    graph_losses, graph_params = train_steps(tmp_path / "graph", f"modulation={modulation}", "trainer=gpu",
                                             "graph_step=true")
    assert graph_losses == pytest.approx(eager_losses, rel=1e-4)
    for name, value in eager_params.items():
        torch.testing.assert_close(graph_params[name], value, rtol=1e-4, atol=1e-6, msg=name)


def test_graph_step_stops_on_a_non_finite_loss_without_writing_bad_checkpoints(tmp_path: Path, monkeypatch):
    sample, calls = RegressionTasks.sample, []

    def poisoned(self, tasks_per_mode, generator):
        episode = sample(self, tasks_per_mode, generator)
        if tasks_per_mode != 4:
            return episode
        calls.append(1)
        return episode._replace(query_y=episode.query_y * float("nan")) if len(calls) == 6 else episode

    monkeypatch.setattr(RegressionTasks, "sample", poisoned)
    with pytest.raises(NonFiniteLossError, match=r"meta-loss is non-finite at meta-iteration 5;"):
        run(compose_train(tmp_path, "trainer.max_steps=20", "val_every=2", "graph_step=true"))
    checkpoint = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["global_step"] == 4
    assert all(torch.isfinite(v).all() for v in checkpoint["state_dict"].values())
