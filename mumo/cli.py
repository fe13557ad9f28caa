"""Shared behaviour of the entry points."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import TypeVar

from mumo.errors import MumoError

T = TypeVar("T")


def report_errors(fn: Callable[..., T]) -> Callable[..., T]:
    """Turn a MumoError (bad config, bad file, diverged run) into one line on stderr and exit 1."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs) -> T:
        try:
            return fn(*args, **kwargs)
        except MumoError as err:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(1)

    return wrapper
