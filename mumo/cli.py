"""Shared behaviour of the entry points."""

from __future__ import annotations

import functools
import logging
import shutil
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from hydra.errors import CompactHydraException
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

from mumo.config import hydra_runtime
from mumo.errors import ConfigError, MumoError

T = TypeVar("T")


def _drop_tips(record: logging.LogRecord) -> bool:
    return "Tip:" not in str(record.msg)


def quiet_third_party() -> None:
    """Silence advertising and deprecation noise from dependencies on the terminal."""
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(_drop_tips)
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
    warnings.filterwarnings("ignore", message=r".*does not have many workers")
    # Printed wherever `srun` is installed; SLURM runs go through hydra/launcher=slurm, which uses it.
    warnings.filterwarnings("ignore", message=r"The `srun` command is available on your system")
    # The fast path checkpoints the post-update state, as the automatic path does.
    warnings.filterwarnings("ignore", message=r"Using ModelCheckpoint with manual optimization")


class LauncherCheck(Callback):
    """Check the launcher's settings before a sweep starts, where a bad value would otherwise
    surface as a traceback from inside the launcher (joblib: `n_jobs == 0 in Parallel`).

    Hydra turns a callback's exception into a warning and goes on, so this exits itself."""

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        if config.hydra.launcher.get("n_jobs", None) == 0:
            err = ConfigError("hydra.launcher.n_jobs", "0 jobs at once cannot run a sweep; "
                                                       "give a number of jobs, or -1 for one per CPU")
            print(f"error: {err}", file=sys.stderr)  # as report_errors prints a single run's error
            sys.exit(1)


class SweepJobError(CompactHydraException):
    """A sweep job's one-line error. Hydra records the job as failed and runs the others; once
    they are done it prints the first failed job's line and exits with 1."""


def _sweep_job() -> str | None:
    """'job N (overrides)' inside a Hydra multirun, else None."""
    hc = hydra_runtime()
    if hc is None or hc.mode != RunMode.MULTIRUN:
        return None
    return f"job {hc.job.num} ({hc.job.override_dirname or 'no overrides'})"


def discard_unused_run_dir() -> None:
    """Remove a failed single run's directory if it holds only what Hydra wrote at start (its
    config and log), so that no empty run is left for `mumo.report` to list. A directory with
    anything else in it (a resumed run's checkpoints, say) is kept. A resume in the run's own
    directory that failed before writing anything loses the config snapshot Hydra wrote for it
    (.hydra/resume-<time>/); one that wrote checkpoints or metrics keeps it, as their record."""
    hc = hydra_runtime()
    if hc is None or hc.mode == RunMode.MULTIRUN:
        return
    out = Path(hc.runtime.output_dir)
    hydra_own = {Path(hc.output_subdir).parts[0] if hc.output_subdir else "", f"{hc.job.name}.log"}
    if out.is_dir() and {p.name for p in out.iterdir()} <= hydra_own:
        shutil.rmtree(out)
        if not any(out.parent.iterdir()):  # outputs/<date>/ made for this run alone
            out.parent.rmdir()
    elif hc.output_subdir and Path(hc.output_subdir).name.startswith("resume-"):
        snapshot = out / hc.output_subdir
        if (snapshot / "config.yaml").is_file() and not _written_since(out, snapshot / "config.yaml", hydra_own):
            shutil.rmtree(snapshot)


def _written_since(run: Path, mark: Path, hydra_own: set[str]) -> bool:
    """Whether any file of `run` but Hydra's own (its config snapshots, its job log) is newer than `mark`."""
    since = mark.stat().st_mtime_ns
    return any(p.stat().st_mtime_ns > since for p in run.rglob("*")
               if p.is_file() and p.relative_to(run).parts[0] not in hydra_own)


def report_errors(fn: Callable[..., T]) -> Callable[..., T]:
    """Turn a MumoError (bad config, bad file, diverged run) into one line on stderr.

    A single run exits with 1. A sweep job raises `SweepJobError` instead, so that one bad job
    does not stop the sweep (sys.exit would end the basic launcher's loop and abort joblib's).
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs) -> T:
        quiet_third_party()
        try:
            return fn(*args, **kwargs)
        except MumoError as err:
            if (job := _sweep_job()) is not None:
                print(f"error: {job}: {err}", file=sys.stderr, flush=True)
                raise SweepJobError(f"error: {job}: {err}") from None
            print(f"error: {err}", file=sys.stderr)
            discard_unused_run_dir()
            sys.exit(1)

    return wrapper
