"""Config helpers shared by the entry points: resolvers, instantiation, stored run configs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from mumo.errors import MumoError

CONFIG_DIR = Path(__file__).resolve().parent.parent / "conf"

if not OmegaConf.has_resolver("mul"):
    OmegaConf.register_new_resolver("mul", lambda a, b: a * b)


def instantiate(config: DictConfig, **kwargs: Any) -> Any:
    """hydra.utils.instantiate, re-raising our own errors (bad values) without Hydra's wrapper."""
    try:
        return hydra.utils.instantiate(config, **kwargs)
    except hydra.errors.InstantiationException as err:
        cause = err.__cause__
        while cause is not None and not isinstance(cause, MumoError):
            cause = cause.__cause__
        if cause is not None:
            raise cause from None
        raise


def portable_config(cfg: DictConfig) -> dict:
    """The run's config as a plain dict, interpolations kept, with run-specific paths resolved.

    Stored in checkpoints so that `mumo.evaluate` can rebuild the run and apply overrides
    (e.g. a different number of inner steps) that propagate through the interpolations.
    """
    out = OmegaConf.to_container(cfg, resolve=False)
    out["paths"] = OmegaConf.to_container(cfg.paths, resolve=True)
    return out
