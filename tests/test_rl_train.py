"""The navigation family through the entry points: python -m mumo.train task=navigation trains,
tests and writes results.json in the shape regression writes; runs are deterministic, resume
exactly, and re-evaluate with more adaptation steps."""

import csv
import json
from pathlib import Path

import pytest
from helpers import ROOT, TINY_NAVIGATION, comparable, compose_train, run_cli

from mumo.config import compose_config
from mumo.errors import ConfigError
from mumo.evaluate import evaluate
from mumo.report import main as report_main
from mumo.train import run

TINY = [*TINY_NAVIGATION, "data.val_tasks_per_mode=2", "data.test_tasks_per_mode=4", "data.eval_batch_size=4",
        "trainer.max_steps=4", "val_every=2", "trainer.log_every_n_steps=1"]


def train(path: Path, *overrides: str) -> dict:
    return run(compose_train(path, *TINY, *overrides, fast=False))


@pytest.mark.parametrize("method, modulation", [("mumomaml", "film"), ("mumomaml", "softmax"), ("mumomaml", "sigmoid"),
                                                ("maml", "none"), ("multi_maml", "none")])
def test_navigation_trains_and_writes_the_shared_results_shape(tmp_path: Path, method: str, modulation: str):
    results = train(tmp_path, f"method={method}_{modulation}" if method == "mumomaml" else f"method={method}")
    assert (results["method"], results["modulation"], results["metric"], results["steps"]) == (method, modulation,
                                                                                                "return", 4)
    test = results["test"]
    assert test["num_tasks"] == 8 and list(test["per_mode"]) == ["(-5,-5)", "(5,5)"]
    assert len(test["return_by_step"]) == 3 and test["return_by_step"][0] == test["post_modulation_return"]
    assert "pre_modulation_return" in test and all(r < 0 for r in test["return_by_step"])
    assert [step for step, _ in results["history"]["train"]] == [0, 1, 2, 3]  # one trainer step per meta-iteration
    assert [row[0] for row in results["history"]["val"]] == [2, 4]
    for name in ("adaptation_curve", "training_curve"):
        assert (tmp_path / f"{name}.png").stat().st_size > 10_000
    assert json.loads((tmp_path / "results.json").read_text()) == results


def test_the_modulated_prior_is_trained_on_its_own_batch_when_asked(tmp_path: Path):
    """experiment=modulated_prior (model.algorithm.after_modulation_weight=1): MuMoMAML samples one
    more batch per iteration and logs its return; MAML, which has no tau, refuses it in one line."""
    train(tmp_path / "mumo", "experiment=modulated_prior")
    rows = list(csv.DictReader((tmp_path / "mumo" / "csv" / "metrics.csv").open()))
    logged = [float(row["train/return_after_modulation"]) for row in rows if row.get("train/return_after_modulation")]
    assert len(logged) == 4 and all(r < 0 for r in logged)
    with pytest.raises(ConfigError, match=r"^model.algorithm.after_modulation_weight: .* maml has no task encoder$"):
        train(tmp_path / "maml", "method=maml", "experiment=modulated_prior")


def test_navigation_runs_are_deterministic_and_resume_exactly(tmp_path: Path):
    full = train(tmp_path / "full")
    assert comparable(train(tmp_path / "again"))["test"] == comparable(full)["test"]
    train(tmp_path / "split", "trainer.max_steps=2")
    resumed = train(tmp_path / "split", f"ckpt_path={tmp_path / 'split'}")
    assert resumed["provenance"]["kind"] == "resumed" and resumed["provenance"]["checkpoint_step"] == 2
    assert resumed["test"] == full["test"] and resumed["history"] == full["history"]


def test_a_navigation_checkpoint_evaluates_with_more_adaptation_steps(tmp_path: Path):
    trained = train(tmp_path / "run")
    cfg = compose_config("evaluate", [f"ckpt_path={tmp_path / 'run'}", f"paths.output_dir={tmp_path / 'eval'}"])
    assert evaluate(cfg)["test"] == trained["test"]
    cfg = compose_config("evaluate", [f"ckpt_path={tmp_path / 'run'}", "inner_steps=4",
                                      f"paths.output_dir={tmp_path / 'eval4'}"])
    assert len(evaluate(cfg)["test"]["return_by_step"]) == 5


def test_report_puts_navigation_beside_regression(tmp_path: Path):
    for modulation in ("film", "none"):
        train(tmp_path / "sweep" / modulation, f"modulation={modulation}")
    run(compose_train(tmp_path / "sweep" / "regression", "trainer.max_steps=2"))
    report_main([str(tmp_path / "sweep")])
    text = (tmp_path / "sweep" / "report.md").read_text()
    navigation = text[text.index("## navigation"):text.index("## regression")]  # runs sort by directory
    assert "## regression" in text and "| method | 2 modes: before modulation | 2 modes: after modulation |" in navigation
    rows = [line for line in navigation.splitlines() if line.startswith("| M")]
    assert [row.split(" | ")[0] for row in rows] == ["| MAML", "| MuMoMAML FiLM"]
    assert "Mean return of the fixed test tasks" in navigation
    for name in ("adaptation_curves.png", "adaptation_curves_rl.png", "validation_curves_rl.png", "figure2a_2modes.png"):
        assert (tmp_path / "sweep" / name).stat().st_size > 10_000, name
    csv_lines = (tmp_path / "sweep" / "report.csv").read_text().splitlines()
    assert any(line.startswith("maml,none,,2,2 modes,pre_modulation_return,") and line.endswith(",navigation")
               for line in csv_lines)


def test_a_navigation_run_logs_to_wandb_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from test_wandb import read_offline_run

    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_SILENT", "true")
    results = train(tmp_path, "logger=wandb")
    (run_file,) = (tmp_path / "wandb").glob("offline-run-*/run-*.wandb")
    logged = read_offline_run(run_file)
    test_rows = [row for row in logged["history"] if "test/post_adaptation_return" in row]
    assert test_rows[-1]["test/post_adaptation_return"] == pytest.approx(results["test"]["post_adaptation_return"])
    assert any("train/return" in row for row in logged["history"])
    (media,) = [row for row in logged["history"] if "figures/rollouts/_type" in row]
    for name in ("adaptation_curve", "training_curve", "rollouts", "task_embeddings"):
        assert media[f"figures/{name}/_type"] == "image-file", name
    assert logged["summary"]["results/metric"] == "return"


@pytest.mark.parametrize("method", ["mumomaml", "maml"])
def test_the_task_identity_probe_reads_a_run(tmp_path: Path, method: str):
    """scripts/rl_task_identity.py prints how well a run's first-stage rollouts, and (MuMoMAML) its
    encoder, tell the modes; it also reads a run that has no encoder (MAML), sizing its fresh encoder
    from the run's config either way. A smoke test: at these tiny settings the numbers themselves
    mean little."""
    train(tmp_path / "run", "method=maml" if method == "maml" else "method=mumomaml_film")
    proc = run_cli(str(ROOT / "scripts" / "rl_task_identity.py"), str(tmp_path / "run"), "--tasks-per-mode", "16",
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert lines[0].startswith(f"navigation, 4 meta-iterations, {method}: 32 + 16 tasks, 3 first-stage rollouts")
    readouts = lines[1:-1]
    assert [line.split(":")[0].strip() for line in readouts] == (["data", "encoder"] if method == "mumomaml" else ["data"])
    assert all(0 <= float(line.rsplit(" ", 1)[1]) <= 1 for line in readouts)
    assert "a fresh encoder (embedding size 8)" in readouts[0]  # the run's model.policy.encoder_size
    assert lines[-1] == "  (chance: 0.500)"
