"""logger=wandb without network or key: an offline run holding config, metrics, figures and table."""

import json
from pathlib import Path

import pytest
from helpers import compose_train
from wandb_records import read_records

from mumo.config import run_name, swept_keys
from mumo.loggers import WandbLogger, previous_wandb_run
from mumo.train import run


def read_offline_run(run_file: Path) -> dict:
    """Config, history rows and summary of an offline run of this process. `run.finish()` can
    return before W&B's service has written the run's last records to `run_file`; tearing the
    service down waits until it has (a later run in this process starts a new one)."""
    import wandb

    wandb.teardown()
    out = {"config": {}, "history": [], "summary": {}}
    for record in read_records(run_file):
        kind = record.WhichOneof("record_type")
        if kind == "config":
            out["config"].update({item.key: json.loads(item.value_json) for item in record.config.update})
        elif kind == "history":
            out["history"].append({item.key or "/".join(item.nested_key): json.loads(item.value_json)
                                   for item in record.history.item})
        elif kind == "summary":
            out["summary"].update({item.key or "/".join(item.nested_key): json.loads(item.value_json)
                                   for item in record.summary.update})
    return out


def test_wandb_logger_writes_an_offline_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys):
    monkeypatch.delenv("WANDB_MODE", raising=False)  # offline must be the default
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_API_KEY", "")
    results = run(compose_train(tmp_path, "logger=wandb", "modulation=film"))
    assert "wandb sync" in capsys.readouterr().out
    (run_dir,) = (tmp_path / "wandb").glob("offline-run-*")
    (run_file,) = run_dir.glob("run-*.wandb")
    logged = read_offline_run(run_file)

    assert logged["config"]["modes"] == 2 and logged["config"]["modulation"]["name"] == "film"
    assert logged["config"]["paths"]["output_dir"] == str(tmp_path)  # resolved, not an interpolation
    test_rows = [row for row in logged["history"] if "test/post_adaptation_mse" in row]
    assert test_rows and test_rows[-1]["test/post_adaptation_mse"] == pytest.approx(results["test"]["post_adaptation_mse"])
    assert any("train/meta_loss" in row for row in logged["history"])
    (media,) = [row for row in logged["history"] if "figures/fits/_type" in row]
    for key in ("figures/fits", "figures/adaptation_curve", "figures/task_embeddings"):
        assert media[f"{key}/_type"] == "image-file"
    assert media["test/results/_type"] == "table-file"
    assert logged["summary"]["results/method"] == "mumomaml"
    images = list((run_dir / "files" / "media" / "images").rglob("*.png"))
    assert len(images) == 4  # fits, adaptation curve, training curve, task embeddings
    (table,) = (run_dir / "files" / "media" / "table").rglob("*.table.json")
    data = json.loads(table.read_text())
    assert data["columns"][0] == "tasks" and [r[0] for r in data["data"]] == ["all", "sinusoid", "linear"]


def test_runs_are_named_after_their_swept_keys_not_evaluation_set_overrides(tmp_path: Path):
    overrides = ["modulation=film", "modes=3", "data.test_tasks_per_mode=20", "trainer.log_every_n_steps=2",
                 "trainer.max_steps=6"]
    assert run_name(overrides) == "modes=3,modulation=film,trainer.max_steps=6"  # a single run
    (tmp_path / "multirun.yaml").write_text(  # as Hydra writes it into the sweep directory
        "hydra:\n  overrides:\n    task:\n    - modulation=film,sigmoid\n    - trainer.max_steps=6\n"
        "    - data.test_tasks_per_mode=20\n")
    swept = swept_keys(tmp_path, {"modes": "3,2", "method": "maml"})
    assert swept == {"modulation", "modes"}
    assert run_name(overrides, swept) == "modes=3,modulation=film"


def test_a_resumed_run_continues_its_wandb_run(tmp_path: Path):
    assert previous_wandb_run(tmp_path) is None
    for name in ("offline-run-20261201_101010-first1", "offline-run-20261201_111111-second2", "latest-run"):
        (tmp_path / "wandb" / name).mkdir(parents=True)
    assert previous_wandb_run(tmp_path) == "second2"


def test_names_and_tags_the_command_line_read_as_numbers_reach_wandb_as_text(tmp_path: Path):
    logger = WandbLogger(project=2024, name=7, group=1.5, tags=["modes=2", 3], save_dir=str(tmp_path), mode="offline")
    init = logger._wandb_init
    assert (init["project"], init["name"], init["group"], init["tags"]) == ("2024", "7", "1.5", ["modes=2", "3"])
