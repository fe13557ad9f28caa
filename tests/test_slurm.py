"""Sweeps on a real SLURM cluster (scripts/slurm-local.sh up) through hydra/launcher=slurm."""

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import FAST, cli_env, run_cli


def cluster_reachable() -> bool:
    if shutil.which("sinfo") is None:
        return False
    return subprocess.run(["scontrol", "ping"], capture_output=True, text=True).returncode == 0


pytestmark = [
    pytest.mark.slurm,
    pytest.mark.skipif(not cluster_reachable(), reason="no SLURM cluster reachable (run scripts/slurm-local.sh up)"),
]
SLURM = ["hydra/launcher=slurm", "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=1",
         "hydra.launcher.timeout_min=10"]


def test_sweep_runs_as_a_slurm_job_array(workdir: Path):
    proc = run_cli("-m", "mumo.train", "-m", *SLURM, "modulation=softmax,film", *FAST, "trainer.max_steps=20",
                   cwd=workdir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (sweep,) = workdir.glob("outputs/multirun/*/*")
    results = [json.loads((sweep / str(i) / "results.json").read_text()) for i in (0, 1)]
    assert [r["modulation"] for r in results] == ["softmax", "film"]
    assert all(r["steps"] == 20 for r in results)
    assert list((sweep / ".submitit").glob("*_0/*_log.out"))  # ran through sbatch, not locally


def queued_jobs(*states: str) -> list[str]:
    args = ["squeue", "-h", "-o", "%i", *(["-t", ",".join(states)] if states else [])]
    return subprocess.run(args, capture_output=True, text=True).stdout.split()


def wait_for_empty_queue(timeout: float = 120) -> None:
    """Jobs of an earlier sweep can still be finishing after their submitter returned."""
    deadline = time.monotonic() + timeout
    while queued_jobs() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not queued_jobs(), f"jobs still queued: {queued_jobs()}"


def test_a_killed_job_fails_alone_and_the_others_keep_their_results(workdir: Path):
    # job 0 trains (nearly) forever and is killed with SIGKILL; job 1 is short and must complete
    wait_for_empty_queue()
    submitter = subprocess.Popen(
        [sys.executable, "-m", "mumo.train", "-m", *SLURM, *FAST, "trainer.max_steps=100000,20"],
        cwd=workdir, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    victim, finished = None, False
    try:
        deadline = time.monotonic() + 120
        while victim is None and time.monotonic() < deadline:
            victim = next((j for j in queued_jobs("R") if j.endswith("_0")), None)
            time.sleep(0.5)
        assert victim, "job 0 never started"
        time.sleep(3)
        subprocess.run(["scancel", "--signal=KILL", "--full", victim], check=True)
        _, stderr = submitter.communicate(timeout=300)
        finished = True
    finally:  # a failed test leaves neither its submitter nor its jobs behind
        if not finished:
            submitter.kill()
            if victim is not None:
                subprocess.run(["scancel", victim.split("_")[0]], check=False)
    assert submitter.returncode != 0
    assert "has not produced any output" in stderr or "FAILED" in stderr or "CANCELLED" in stderr, stderr[-2000:]
    (sweep,) = workdir.glob("outputs/multirun/*/*")
    deadline = time.monotonic() + 120
    while not (sweep / "1" / "results.json").exists() and time.monotonic() < deadline:
        time.sleep(1)
    assert json.loads((sweep / "1" / "results.json").read_text())["steps"] == 20
    assert not (sweep / "0" / "results.json").exists()


def test_an_rl_sweep_runs_on_slurm(workdir: Path):
    tiny = ["tasks_per_mode=1", "model.rollouts=2", "model.horizon=10", "model.promp_steps=1",
            "model.policy.hidden_sizes=[8,8]", "model.policy.encoder_size=4", "data.val_tasks_per_mode=1",
            "data.test_tasks_per_mode=2", "data.eval_batch_size=2", "trainer.max_steps=2", "val_every=2",
            "logger=none"]
    wait_for_empty_queue()
    # (a sweep over task= cannot carry task-specific overrides: each task's own keys differ)
    proc = run_cli("-m", "mumo.train", "-m", *SLURM, "task=cheetah_speed", "method=maml,mumomaml_film", *tiny,
                   cwd=workdir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (sweep,) = workdir.glob("outputs/multirun/*/*")
    results = [json.loads((sweep / str(i) / "results.json").read_text()) for i in (0, 1)]
    assert [(r["task"], r["method"], r["steps"]) for r in results] == [("cheetah_speed", "maml", 2),
                                                                       ("cheetah_speed", "mumomaml", 2)]
    assert list((sweep / ".submitit").glob("*_1/*_log.out"))
