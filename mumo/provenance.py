"""Where a run's numbers came from: code version, machine, and the training history behind them.

Every results.json carries these, so that two runs can be compared on everything that made them
(see `mumo.report`) and a number can be traced to the commit, checkpoint and segments it came from.
"""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path

import torch

from mumo.threads import device_of

REPO_ROOT = Path(__file__).resolve().parent.parent


def code_version(root: Path = REPO_ROOT) -> dict:
    """{'commit': git HEAD or None, 'dirty': uncommitted changes (tracked or untracked) or None}."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain") if commit else None
    return {"commit": commit.strip() if commit else None, "dirty": bool(status.strip()) if status is not None else None}


def environment(accelerator: str) -> dict:
    """The device the numbers were computed on and the library versions (threads: top level)."""
    cuda = device_of(accelerator) == "cuda" and torch.cuda.is_available()
    return {
        "device": "cuda" if cuda else "cpu",
        "device_name": torch.cuda.get_device_name() if cuda else (platform.processor() or platform.machine()),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


class TrainingClock:
    """Training time over every segment of a run (a resumed run continues the first one's clock).

    The meta-learner keeps one and stores `state_dict()` in each checkpoint; `segments` lists
    the first step, last step and seconds of each `fit` call, up to the checkpoint's step.
    """

    def __init__(self) -> None:
        self.segments: list[dict] = []
        self.resumed_seconds = 0.0  # training time stored in the checkpoint this run resumed from

    def start(self, step: int) -> None:
        self.segments.append({"from_step": int(step), "to_step": int(step), "seconds": 0.0})

    def stop(self, step: int, seconds: float) -> None:
        self.segments[-1].update(to_step=int(step), seconds=round(float(seconds), 3))

    @property
    def total_seconds(self) -> float:
        return round(sum(s["seconds"] for s in self.segments), 3)

    @property
    def this_run_seconds(self) -> float:
        """Training time of this process's segment (0 if it had nothing left to train)."""
        return round(self.total_seconds - self.resumed_seconds, 3)

    def state_dict(self) -> dict:
        return {"segments": [dict(s) for s in self.segments]}

    def load_state_dict(self, state: dict) -> None:
        """The segments stored in a checkpoint (they end at its step: they were stored with it)."""
        self.segments = [dict(s) for s in state.get("segments", [])]
        self.resumed_seconds = self.total_seconds


def provenance(kind: str, clock: TrainingClock, checkpoint: str | None = None, step: int | None = None) -> dict:
    """results.json's `provenance`: `trained`, `resumed` (from `checkpoint` at `step`) or
    `evaluated` (`checkpoint` re-tested), with the training time over every segment."""
    origin = {"checkpoint": checkpoint, "checkpoint_step": step} if checkpoint is not None else {}
    return {"kind": kind, **origin, "train_seconds_total": clock.total_seconds, "segments": clock.segments}
