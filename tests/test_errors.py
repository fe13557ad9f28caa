"""Bad input gets a one-line error naming the key (values: test_schema.py); a diverged run stops and keeps
its checkpoint."""

from pathlib import Path

import pytest
import torch
from helpers import FAST, compose_train, run_cli
from omegaconf import OmegaConf

from mumo.regression.functions import RegressionTasks
from mumo.errors import ConfigError, NonFiniteLossError
from mumo.schema import check_train
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


def test_a_failed_run_or_evaluation_leaves_no_run_directory(workdir: Path):
    proc = run_cli("-m", "mumo.train", "inner_lr=-1", cwd=workdir)
    assert proc.returncode == 1 and proc.stderr.strip().endswith("error: inner_lr: must be > 0 (got -1.0)")
    proc = run_cli("-m", "mumo.evaluate", f"ckpt_path={workdir}", cwd=workdir)
    assert proc.returncode == 1
    assert proc.stderr.strip().endswith(f"error: ckpt_path: {workdir} is a directory without checkpoints/last.ckpt")
    assert not [p for p in workdir.rglob("*") if p.is_file()]  # no run directory for the report to list


def test_method_multi_maml_stores_the_modulation_it_runs_with(tmp_path: Path):
    for task, nets in (("regression", "model.net.per_mode_nets"), ("navigation", "model.policy.per_mode_nets")):
        cfg = compose_train(tmp_path, f"task={task}", "method=multi_maml")
        assert cfg.modulation.name == "none" and OmegaConf.select(cfg, nets) == 2
        with pytest.raises(ConfigError, match="modulation.name: Multi-MAML is a baseline without modulation"):
            check_train(compose_train(tmp_path, f"task={task}", "method=multi_maml", "modulation=film"))


def test_an_output_directory_that_cannot_be_made_is_one_line_naming_the_option(workdir: Path):
    run(compose_train(workdir / "run"))
    blocker = workdir / "a_file"
    blocker.write_text("")
    below = f"paths.output_dir={blocker / 'out'}"
    not_made = f"paths.output_dir: cannot create the directory {blocker / 'out'}: Not a directory"
    is_a_file = f"{blocker} is a file, not a directory"
    for args, message in [
        (("mumo.train", *FAST, below), not_made),
        (("mumo.evaluate", f"ckpt_path={workdir / 'run'}", f"paths.output_dir={blocker}"),
         f"paths.output_dir: {is_a_file}"),
        (("mumo.bench", "variants=[low_rank]", "tasks=[2]", below), not_made),
        (("mumo.report", str(workdir / "run"), "--out", str(blocker)), f"--out: {is_a_file}"),
        (("mumo.train", "task=classification", f"data.root={blocker}"), f"data.root: {is_a_file}"),
    ]:
        proc = run_cli("-m", *args, cwd=workdir)
        assert proc.returncode == 1, args
        assert proc.stderr.strip().splitlines()[-1] == f"error: {message}"
        assert "Traceback" not in proc.stderr
    assert blocker.read_text() == ""  # nothing written over it
