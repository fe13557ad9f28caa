"""Bad input gets a one-line error naming the key (values: test_schema.py); a diverged run stops and keeps
its checkpoint."""

from pathlib import Path

import pytest
import torch
from helpers import FAST, compose_train, run_cli

from mumo.data.functions import RegressionTasks
from mumo.errors import NonFiniteLossError
from mumo.train import run


def test_unknown_modulation_group_option_is_reported_by_hydra(workdir: Path):
    proc = run_cli("-m", "mumo.train", "modulation=gelu", cwd=workdir)
    assert proc.returncode == 1
    assert "Could not find 'modulation/gelu'" in proc.stderr and "Traceback" not in proc.stderr


def test_non_finite_meta_loss_stops_training_and_keeps_the_last_good_checkpoint(tmp_path: Path, monkeypatch):
    sample, calls = RegressionTasks.sample, []

    def poisoned(self, tasks_per_mode, generator):
        episode = sample(self, tasks_per_mode, generator)
        if tasks_per_mode != 4:  # a fixed evaluation set, not the training stream
            return episode
        calls.append(1)
        return episode._replace(query_y=episode.query_y * float("inf")) if len(calls) == 6 else episode

    monkeypatch.setattr(RegressionTasks, "sample", poisoned)
    cfg = compose_train(tmp_path, "trainer.max_steps=20", "val_every=2")
    with pytest.raises(NonFiniteLossError, match=r"meta-loss is (inf|nan) at meta-iteration 5;"):
        run(cfg)
    checkpoint = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["global_step"] == 4
    assert all(torch.isfinite(v).all() for v in checkpoint["state_dict"].values())
    assert not (tmp_path / "results.json").exists()


@pytest.mark.parametrize("entry", ["mumo.train", "mumo.evaluate"])
def test_truncated_or_missing_checkpoints_give_one_line_errors(workdir: Path, entry: str):
    run(compose_train(workdir / "run"))
    original = workdir / "run" / "checkpoints" / "last.ckpt"
    data = original.read_bytes()
    truncated = workdir / "truncated.ckpt"
    truncated.write_bytes(data[: len(data) // 2])
    for path, message in [(truncated, f"error: ckpt_path: {truncated} is not a readable checkpoint"),
                          (workdir / "missing.ckpt", f"error: ckpt_path: no such file: {workdir / 'missing.ckpt'}")]:
        proc = run_cli("-m", entry, f"ckpt_path={path}", *(FAST if entry == "mumo.train" else []), cwd=workdir)
        assert proc.returncode == 1
        assert proc.stderr.strip().splitlines()[-1].startswith(message)
        assert "Traceback" not in proc.stderr
    assert original.read_bytes() == data  # nothing already written is touched
