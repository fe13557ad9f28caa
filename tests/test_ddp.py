"""Two DDP processes (gloo, CPU) take the same step as one process on the whole meta-batch."""

import csv
from pathlib import Path

import pytest
import torch
from helpers import FAST, compose_train, run_cli

from mumo.regression.data import RegressionDataModule
from mumo.regression.data import rank_share
from mumo.errors import ConfigError


def test_rank_shares_are_disjoint_stratified_and_cover_the_meta_batch():
    episode = next(iter(RegressionDataModule(meta_batch_size=8).train_stream))
    shares = [rank_share(episode, rank, 2) for rank in range(2)]
    tasks = [{tuple(x.flatten().tolist()) for x in share.support_x} for share in shares]
    assert not tasks[0] & tasks[1]
    assert tasks[0] | tasks[1] == {tuple(x.flatten().tolist()) for x in episode.support_x}
    assert all(share.mode.bincount().tolist() == [2, 2] for share in shares)
    with pytest.raises(ConfigError, match="^meta_batch_size: must be divisible by the number of processes"):
        rank_share(episode, 0, 3)


def step_results(run_dir: Path) -> tuple[float, dict, list[torch.Tensor], int]:
    """Logged meta-loss, parameters, Adam's first moments (0.1 x the clipped gradient) and steps."""
    rows = list(csv.DictReader((run_dir / "csv" / "metrics.csv").open()))
    loss = next(float(r["train/meta_loss"]) for r in rows if r.get("train/meta_loss"))
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    state = checkpoint["optimizer_states"][0]["state"]
    moments = [state[i]["exp_avg"] for i in sorted(state)]
    return loss, checkpoint["state_dict"], moments, checkpoint["global_step"]


def test_one_ddp_step_equals_one_single_process_step(workdir: Path):
    common = [*FAST, "trainer.max_steps=1", "val_every=1", "trainer.log_every_n_steps=1", "modulation=film"]
    single = run_cli("-m", "mumo.train", *common, "hydra.run.dir=single", cwd=workdir)
    assert single.returncode == 0, single.stderr[-3000:]
    ddp = run_cli("-m", "mumo.train", *common, "trainer=ddp", "hydra.run.dir=ddp", cwd=workdir)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    loss_single, state_single, moments_single, steps_single = step_results(workdir / "single")
    loss_ddp, state_ddp, moments_ddp, steps_ddp = step_results(workdir / "ddp")
    assert steps_single == steps_ddp == 1
    assert loss_ddp == pytest.approx(loss_single, rel=1e-5)
    assert len(moments_ddp) == len(moments_single) == len(state_single)
    for g_ddp, g_single in zip(moments_ddp, moments_single):  # the averaged, clipped meta-gradients
        torch.testing.assert_close(g_ddp, g_single, rtol=1e-5, atol=1e-9)
    # Adam's first step moves every element by about lr * sign(g), so gradient rounding shows up in
    # the parameters in units of lr: compare the parameters to a small fraction of one step.
    lr = compose_train(workdir, *common).meta_lr
    for name, value in state_single.items():
        torch.testing.assert_close(state_ddp[name], value, rtol=0, atol=1e-3 * lr, msg=name)
