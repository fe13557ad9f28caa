"""Errors that entry points report as one line instead of a traceback."""

from __future__ import annotations

from pathlib import Path


class MumoError(Exception):
    """Base class: a problem the user can fix (bad config, bad file, diverged run)."""


class ConfigError(MumoError, ValueError):
    """A config value is invalid; the message starts with the offending key."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.reason = message


class NonFiniteLossError(MumoError, FloatingPointError):
    """The meta-loss became NaN or infinite; training stops before the bad update."""

    def __init__(self, step: int, value: float) -> None:
        value_text = "non-finite" if value != value else str(value)  # the fast path only knows "not finite"
        super().__init__(
            f"meta-loss is {value_text} at meta-iteration {step}; training stopped "
            "(the last checkpoint on disk was written before that step)"
        )
        self.step = step


def output_directory(path: str | Path, key: str) -> Path:
    """Create the directory `path` (set by the option `key`) with its parents if need be; one line
    naming the option where it cannot be (a file in the way, no permission)."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ConfigError(key, f"{path} is a file, not a directory") from None
    except OSError as err:
        raise ConfigError(key, f"cannot create the directory {path}: {err.strerror}") from None
    return path
