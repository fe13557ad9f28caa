"""A run killed with SIGKILL and resumed from its directory ends with the numbers of an
uninterrupted run, in its own directory, with one metric history and the training time of both
segments: a regression run and an RL (navigation) run, whose checkpoints also carry the rollout
noise's generator."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import FAST, TINY_NAVIGATION

TRAIN = [sys.executable, "-m", "mumo.train", *FAST, "trainer.max_steps=40", "val_every=4",
         "+logger.csv.flush_logs_every_n_steps=1", "callbacks.progress_bar.refresh_rate=0"]


def meta_losses(run: Path) -> list[tuple[int, str]]:
    """(step, train/meta_loss) of every row of the run's metrics.csv that has one, in file order."""
    with open(run / "csv" / "metrics.csv", newline="") as f:
        return [(int(r["step"]), r["train/meta_loss"]) for r in csv.DictReader(f) if r["train/meta_loss"]]


@pytest.mark.parametrize("family", [[], TINY_NAVIGATION], ids=["regression", "navigation"])
def test_sigkill_then_resume_continues_the_run_in_its_own_directory(workdir: Path, family: list[str]):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    train = [*TRAIN, *family]
    subprocess.run([*train, "hydra.run.dir=full"], cwd=workdir, env=env, check=True, capture_output=True)
    expected = json.loads((workdir / "full" / "results.json").read_text())

    victim = subprocess.Popen([*train, "hydra.run.dir=killed"], cwd=workdir, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = workdir / "killed" / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if last.exists() and torch.load(last, weights_only=True)["global_step"] >= 12:
            break
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    killed_at = torch.load(last, weights_only=True)["global_step"]
    assert 12 <= killed_at < 40 and not (workdir / "killed" / "results.json").exists()
    original_config = (workdir / "killed" / ".hydra" / "config.yaml").read_text()

    # ckpt_path=<run directory>: no hydra.run.dir, the run continues where it was
    proc = subprocess.run([*train, "ckpt_path=killed"], cwd=workdir, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(p.name for p in workdir.iterdir()) == ["full", "killed"]  # no new run directory
    assert "dirpath has changed" not in proc.stderr
    resumed = json.loads((workdir / "killed" / "results.json").read_text())
    assert resumed["steps"] == expected["steps"] == 40
    assert resumed["test"] == expected["test"] and resumed["history"] == expected["history"]

    provenance = resumed["provenance"]
    assert provenance["kind"] == "resumed" and provenance["checkpoint_step"] == killed_at
    assert provenance["checkpoint"] == str(last.resolve())
    segments = provenance["segments"]
    assert [(s["from_step"], s["to_step"]) for s in segments] == [(0, killed_at), (killed_at, 40)]
    assert resumed["train_seconds"] == segments[1]["seconds"]
    assert provenance["train_seconds_total"] == round(segments[0]["seconds"] + segments[1]["seconds"], 3)
    assert segments[0]["seconds"] > 0

    # one metric history: every step once, in order, the same losses as the uninterrupted run
    losses = meta_losses(workdir / "killed")
    assert [step for step, _ in losses] == sorted({step for step, _ in losses})
    assert losses == meta_losses(workdir / "full")
    assert (workdir / "killed" / ".hydra" / "config.yaml").read_text() == original_config
    (resume_dir,) = (workdir / "killed" / ".hydra").glob("resume-*")
    assert "ckpt_path=killed" in (resume_dir / "overrides.yaml").read_text()


def test_resuming_a_finished_run_keeps_its_earlier_results(workdir: Path):
    """...also when its directory was moved: the resumed run's last.ckpt replaces the one it
    started from (a later resume of the same directory continues from the newest weights)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    short = [arg for arg in TRAIN if not arg.startswith("trainer.max_steps")]
    subprocess.run([*short, "trainer.max_steps=4", "hydra.run.dir=first"], cwd=workdir, env=env, check=True,
                   capture_output=True)
    (workdir / "first").rename(workdir / "run")
    first = (workdir / "run" / "results.json").read_text()
    proc = subprocess.run([*short, "trainer.max_steps=8", "ckpt_path=run/checkpoints/last.ckpt"], cwd=workdir,
                          env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (workdir / "run" / "results-4.json").read_text() == first
    assert json.loads((workdir / "run" / "results.json").read_text())["steps"] == 8
    assert [p.name for p in (workdir / "run" / "checkpoints").iterdir()] == ["last.ckpt"]
    assert torch.load(workdir / "run" / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 8


def test_resuming_with_another_model_is_one_line_and_leaves_the_run_as_it_was(workdir: Path):
    short = [arg for arg in TRAIN if not arg.startswith("trainer.max_steps")]
    subprocess.run([*short, "trainer.max_steps=4", "hydra.run.dir=run"], cwd=workdir, check=True, capture_output=True)

    def files() -> dict[str, bytes]:  # the job log aside, which Hydra appends to
        return {str(p.relative_to(workdir)): p.read_bytes() for p in (workdir / "run").rglob("*")
                if p.is_file() and p.suffix != ".log"}

    before = files()
    proc = subprocess.run([*short, "modulation=none", "ckpt_path=run"], cwd=workdir, capture_output=True, text=True)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith(
        "error: ckpt_path: its weights do not fit the model of this run (")
    assert files() == before


@pytest.mark.parametrize("wrote_after_start", [False, True], ids=["failed-at-start", "failed-after-a-checkpoint"])
def test_a_failed_resume_keeps_its_config_snapshot_only_if_it_wrote_something(tmp_path: Path, monkeypatch,
                                                                              wrote_after_start: bool):
    from types import SimpleNamespace

    from hydra.types import RunMode

    import mumo.cli

    run = tmp_path / "run"
    checkpoint = run / "checkpoints" / "last.ckpt"
    snapshot = run / ".hydra" / "resume-2026-12-03_10-00-00"
    for path in (run / ".hydra" / "config.yaml", checkpoint, snapshot / "config.yaml", run / "train.log"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")
    start = (snapshot / "config.yaml").stat().st_mtime_ns
    os.utime(checkpoint, ns=(start, start + 10**9 if wrote_after_start else start - 10**9))
    hc = SimpleNamespace(mode=RunMode.RUN, runtime=SimpleNamespace(output_dir=str(run)),
                         output_subdir=".hydra/resume-2026-12-03_10-00-00", job=SimpleNamespace(name="train"))
    monkeypatch.setattr(mumo.cli, "hydra_runtime", lambda: hc)
    mumo.cli.discard_unused_run_dir()
    assert snapshot.is_dir() == wrote_after_start
    assert checkpoint.is_file() and (run / ".hydra" / "config.yaml").is_file()
