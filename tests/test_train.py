"""End to end: the train and evaluate entry points, as Python calls and as a user's commands."""

import json
import os
from pathlib import Path

import pytest
import torch

from helpers import FAST, comparable, compose_train, run_cli
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from mumo.config import CONFIG_DIR, instantiate
from mumo.evaluate import evaluate
from mumo.core.learner import cosine_decay
from mumo.results import write_json
from mumo.train import build_trainer, run

REQUIRED_TEST_KEYS = {"post_modulation_mse", "post_modulation_ci95", "post_adaptation_mse", "post_adaptation_ci95",
                      "mse_by_step", "mse_by_step_ci95", "per_mode", "num_tasks"}


def test_training_run_writes_results_checkpoint_and_figure(tmp_path: Path):
    results = run(compose_train(tmp_path, "modulation=film", "seed=3"))
    on_disk = json.loads((tmp_path / "results.json").read_text())
    assert on_disk == results
    assert {k: on_disk[k] for k in ("method", "modulation", "modes", "inner_steps", "seed", "steps")} == {
        "method": "mumomaml", "modulation": "film", "modes": 2, "inner_steps": 2, "seed": 3, "steps": 6}
    test = on_disk["test"]
    assert REQUIRED_TEST_KEYS <= set(test)
    assert len(test["mse_by_step"]) == 3 and test["mse_by_step"][0] == test["post_modulation_mse"]
    assert test["mse_by_step"][-1] == test["post_adaptation_mse"] and test["num_tasks"] == 40
    assert set(test["per_mode"]) == {"sinusoid", "linear"}
    assert REQUIRED_TEST_KEYS - {"per_mode"} <= set(test["per_mode"]["linear"])
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()
    for figure in ("fits", "adaptation_curve", "training_curve", "task_embeddings"):
        assert (tmp_path / f"{figure}.png").stat().st_size > 10_000, figure
    metrics = (tmp_path / "csv" / "metrics.csv").read_text()
    assert "train/meta_loss" in metrics and "val/post_adaptation_mse" in metrics and "train/tasks_per_s" in metrics


def test_results_json_says_what_ran_and_where_it_came_from(tmp_path: Path):
    cfg = compose_train(tmp_path, "modulation=film", "seed=3")
    results = run(cfg)
    assert results["config"] == OmegaConf.to_container(cfg, resolve=True)  # every key, resolved
    assert results["config"]["modulation"]["layers"] is None and results["config"]["inner_lr"] == 0.001
    assert len(results["code"]["commit"]) == 40 and isinstance(results["code"]["dirty"], bool)
    assert results["environment"]["device"] == "cpu" and results["environment"]["torch"] == torch.__version__
    provenance = results["provenance"]
    assert provenance["kind"] == "trained" and "checkpoint" not in provenance
    assert [(s["from_step"], s["to_step"]) for s in provenance["segments"]] == [(0, 6)]
    assert provenance["train_seconds_total"] == results["train_seconds"] > 0
    assert [step for step, _ in results["history"]["train"]] == [0, 2, 4]  # every log_every_n_steps
    assert [row[0] for row in results["history"]["val"]] == [3, 6]  # [step, after modulation, after adaptation]


def test_results_json_is_written_atomically_with_the_usual_permissions(tmp_path: Path):
    path = tmp_path / "results.json"
    write_json(path, {"a": 1})
    write_json(path, {"a": 2})
    assert json.loads(path.read_text()) == {"a": 2} and [p.name for p in tmp_path.iterdir()] == ["results.json"]
    mask = os.umask(0o022)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask  # not mkstemp's private 0600


def test_runs_with_the_same_seed_give_identical_results(tmp_path: Path):
    a = run(compose_train(tmp_path / "a", "modulation=sigmoid"))
    b = run(compose_train(tmp_path / "b", "modulation=sigmoid"))
    assert comparable(a) == comparable(b)


def test_maml_has_no_modulation_and_matches_its_prior(tmp_path: Path):
    results = run(compose_train(tmp_path, "modulation=none", "inner_steps=0"))
    assert results["method"] == "maml" and results["test"]["mse_by_step"] == [results["test"]["post_modulation_mse"]]


@pytest.mark.parametrize("graph_step", [False, True])
def test_cosine_schedule_takes_the_meta_learning_rate_to_zero_at_max_steps(tmp_path: Path, graph_step: bool):
    lrs = {}
    for schedule in ("constant", "cosine"):
        cfg = compose_train(tmp_path / schedule, f"lr_schedule={schedule}", f"graph_step={str(graph_step).lower()}",
                            "logger=none")
        datamodule = instantiate(cfg.data)
        module = instantiate(cfg.model, **datamodule.learner_inputs())
        trainer = build_trainer(cfg)
        trainer.fit(module, datamodule=datamodule)
        lrs[schedule] = [group["lr"] for group in trainer.optimizers[0].param_groups]
    assert lrs == {"constant": [cfg.meta_lr] * 2, "cosine": [0.0, 0.0]}
    assert [cosine_decay(step, 4) for step in range(5)] == pytest.approx([1, 0.5 + 0.5 ** 1.5, 0.5, 0.5 - 0.5 ** 1.5, 0])
    assert cosine_decay(9, 4) == 0.0  # steps past the end (a resumed run with fewer max_steps) stay at 0


def test_evaluate_reproduces_the_training_test_metrics(tmp_path: Path):
    trained = run(compose_train(tmp_path / "run", "modulation=softmax"))
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("evaluate", overrides=[f"ckpt_path={tmp_path}/run/checkpoints/last.ckpt",
                                             f"paths.output_dir={tmp_path}/eval"])
    evaluated = evaluate(cfg)
    assert evaluated["test"] == trained["test"] and evaluated["history"] == trained["history"]
    assert evaluated["steps"] == trained["steps"]
    provenance = json.loads((tmp_path / "eval" / "results.json").read_text())["provenance"]
    assert provenance["kind"] == "evaluated" and provenance["checkpoint_step"] == 6
    assert provenance["checkpoint"] == str(tmp_path / "run" / "checkpoints" / "last.ckpt")
    # the checkpoint's training time: up to when it was written, right after the last validation
    assert 0 < provenance["train_seconds_total"] <= trained["provenance"]["train_seconds_total"]
    assert [(s["from_step"], s["to_step"]) for s in provenance["segments"]] == [(0, 6)]
    assert evaluated["config"]["paths"]["output_dir"] == str(tmp_path / "eval")
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):  # a run directory finds its last.ckpt
        cfg = compose("evaluate", overrides=[f"ckpt_path={tmp_path}/run", "inner_steps=4",
                                             f"paths.output_dir={tmp_path}/eval4"])
    evaluated = evaluate(cfg)
    assert len(evaluated["test"]["mse_by_step"]) == 5 and evaluated["config"]["inner_steps"] == 4
    assert evaluated["config"]["model"]["inner_loop"]["steps"] == 4  # the override reached what ran


def test_l2l_engine_trains_to_the_same_numbers(tmp_path: Path):
    torch.set_default_dtype(torch.float64)
    try:
        batched = run(compose_train(tmp_path / "b", "engine=batched", "trainer.max_steps=2", "data.test_tasks_per_mode=4"))
        l2l = run(compose_train(tmp_path / "l", "engine=l2l", "trainer.max_steps=2", "data.test_tasks_per_mode=4"))
    finally:
        torch.set_default_dtype(torch.float32)
    for key in ("post_modulation_mse", "post_adaptation_mse"):
        assert batched["test"][key] == pytest.approx(l2l["test"][key], rel=1e-9)
    assert (batched["engine"], l2l["engine"]) == ("batched", "l2l")  # the engine that ran, figures included


def test_cli_sweep_over_modulations(workdir: Path):
    proc = run_cli("-m", "mumo.train", "-m", "modulation=softmax,sigmoid,film", *FAST, cwd=workdir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = sorted(workdir.glob("outputs/multirun/*/*/*/results.json"))
    assert [json.loads(p.read_text())["modulation"] for p in results] == ["softmax", "sigmoid", "film"]
    assert [p.parent.name for p in results] == ["0", "1", "2"]


def test_cli_sweep_over_modes_and_inner_steps(workdir: Path):
    proc = run_cli("-m", "mumo.train", "-m", "modes=2,3", "inner_steps=1,5", *[o for o in FAST if not o.startswith("inner_steps")],
                   cwd=workdir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = [json.loads(p.read_text()) for p in workdir.glob("outputs/multirun/*/*/*/results.json")]
    assert sorted((r["modes"], r["inner_steps"], r["meta_batch_size"]) for r in runs) == [
        (2, 1, 8), (2, 5, 8), (3, 1, 12), (3, 5, 12)]
    assert all(len(r["test"]["mse_by_step"]) == r["inner_steps"] + 1 for r in runs)
