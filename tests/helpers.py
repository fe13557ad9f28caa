"""Helpers for tests: composing the project's Hydra config with fast settings, running commands."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from mumo.config import CONFIG_DIR

ROOT = Path(__file__).resolve().parent.parent

# Settings that keep a training run to a few seconds on a 2-core CPU.
FAST = [
    "trainer.max_steps=6",
    "val_every=3",
    "data.val_tasks_per_mode=10",
    "data.test_tasks_per_mode=20",
    "tasks_per_mode=4",
    "inner_steps=2",
    "logger=csv",
    "trainer.log_every_n_steps=2",
]

# A navigation run small enough for tests: a few short rollouts per task, small networks.
TINY_NAVIGATION = ["task=navigation", "tasks_per_mode=2", "model.rollouts=3", "model.horizon=10",
                   "model.promp_steps=2", "model.policy.hidden_sizes=[16,16]", "model.policy.encoder_size=8"]


def compose_train(output_dir: Path, *overrides: str, fast: bool = True) -> DictConfig:
    """The `train` config as the CLI would compose it, writing into `output_dir`."""
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return compose("train", overrides=[*(FAST if fast else []), f"paths.output_dir={output_dir}", *overrides])


def comparable(results: dict) -> dict:
    """results.json without what differs between identical runs: wall times, where it wrote, how
    its thread count was chosen (the config is kept as the report compares it)."""
    from mumo.report import settings

    out = {k: v for k, v in results.items() if k not in ("train_seconds", "threads_source", "provenance", "config")}
    out["settings"] = settings(results["config"])
    out["provenance"] = {k: v for k, v in results["provenance"].items()
                         if k not in ("train_seconds_total", "segments", "checkpoint")}
    out["segments"] = [(s["from_step"], s["to_step"]) for s in results["provenance"]["segments"]]
    return out


def cli_env() -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1", "WANDB_MODE": "offline", "WANDB_SILENT": "true"}


def run_cli(*args: str, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run `python ...` (e.g. `-m mumo.train ...`) as a user would, in `cwd`."""
    return subprocess.run([sys.executable, *args], cwd=cwd, env=cli_env(), capture_output=True, text=True,
                          timeout=timeout)


def episode_length(env) -> int:
    """Steps a gymnasium env with random actions to the end of its episode, checking on the way
    that it never terminates (the meta-RL environments only truncate at their horizon)."""
    steps = 0
    while True:
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        steps += 1
        assert not terminated
        if truncated:
            return steps
