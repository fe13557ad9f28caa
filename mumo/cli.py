"""Shared behaviour of the entry points."""

from __future__ import annotations

import functools
import logging
import sys
import warnings
from collections.abc import Callable
from typing import TypeVar

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


def report_errors(fn: Callable[..., T]) -> Callable[..., T]:
    """Turn a MumoError (bad config, bad file, diverged run) into one line on stderr and exit 1."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs) -> T:
        quiet_third_party()
        try:
            return fn(*args, **kwargs)
        except MumoError as err:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(1)

    return wrapper
