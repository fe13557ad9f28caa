"""Shared behaviour of the entry points."""

from __future__ import annotations

import functools
import logging
import sys
import warnings
from collections.abc import Callable
from typing import TypeVar

from hydra.errors import CompactHydraException
from hydra.types import RunMode

from mumo.config import hydra_runtime
from mumo.errors import MumoError

T = TypeVar("T")


def _drop_tips(record: logging.LogRecord) -> bool:
    return "Tip:" not in str(record.msg)


def quiet_third_party() -> None:
    """Silence advertising and deprecation noise from dependencies on the terminal."""
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(_drop_tips)
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
    warnings.filterwarnings("ignore", message=r".*does not have many workers")
    # The fast path checkpoints the post-update state, as the automatic path does.
    warnings.filterwarnings("ignore", message=r"Using ModelCheckpoint with manual optimization")


class SweepJobError(CompactHydraException):
    """A sweep job's one-line error. Hydra records the job as failed and runs the others; once
    they are done it prints the first failed job's line and exits with 1."""


def _sweep_job() -> str | None:
    """'job N (overrides)' inside a Hydra multirun, else None."""
    hc = hydra_runtime()
    if hc is None or hc.mode != RunMode.MULTIRUN:
        return None
    return f"job {hc.job.num} ({hc.job.override_dirname or 'no overrides'})"


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
            sys.exit(1)

    return wrapper
