"""A run killed with SIGKILL and resumed from last.ckpt ends with the numbers of an uninterrupted run."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
from helpers import FAST

TRAIN = [sys.executable, "-m", "mumo.train", *FAST, "trainer.max_steps=40", "val_every=4", "logger=none"]


def test_sigkill_then_resume_reproduces_the_uninterrupted_run(workdir: Path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    subprocess.run([*TRAIN, "hydra.run.dir=full"], cwd=workdir, env=env, check=True, capture_output=True)
    expected = json.loads((workdir / "full" / "results.json").read_text())

    victim = subprocess.Popen([*TRAIN, "hydra.run.dir=killed"], cwd=workdir, env=env,
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

    proc = subprocess.run([*TRAIN, f"ckpt_path={last}", "hydra.run.dir=resumed"], cwd=workdir, env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    resumed = json.loads((workdir / "resumed" / "results.json").read_text())
    assert resumed["steps"] == expected["steps"] == 40
    assert resumed["test"] == expected["test"]
    assert torch.load(last, weights_only=True)["global_step"] == killed_at  # the old run's files are untouched
