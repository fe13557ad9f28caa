"""Config helpers shared by the entry points: resolvers, instantiation, stored run configs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hydra
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.types import RunMode
from omegaconf import DictConfig, ListConfig, OmegaConf

from mumo.errors import MumoError
from mumo.threads import usable_cpus

CONFIG_DIR = Path(__file__).resolve().parent.parent / "conf"


def paper_modulated_layers(modes: int, modulation: str) -> ListConfig | None:
    """Layers the paper's commands modulated: hidden layer 1 only with 2 modes, else all (null).

    None for MAML and Multi-MAML, which modulate nothing. A ListConfig, not a list: OmegaConf
    cannot store a resolver's plain list in an untyped node (`--cfg job --resolve` failed on it).
    """
    return ListConfig([0]) if modes == 2 and modulation != "none" else None


def hydra_runtime():
    """Hydra's runtime config inside a running Hydra app (`hydra.main`), else None."""
    from hydra.core.hydra_config import HydraConfig

    return HydraConfig.get() if HydraConfig.initialized() else None


def sweep_name() -> str | None:
    """'sweep-<date>_<time>' (the multirun directory) inside a Hydra multirun, else None."""
    hc = hydra_runtime()
    if hc is None or hc.mode != RunMode.MULTIRUN:
        return None
    sweep_dir = Path(hc.sweep.dir)
    return f"sweep-{sweep_dir.parent.name}_{sweep_dir.name}"


def job_name() -> str | None:
    """The run's command-line overrides as a name (Hydra's override_dirname), or None."""
    hc = hydra_runtime()
    return (hc.job.override_dirname or None) if hc is not None else None


RESOLVERS = {
    "mul": lambda a, b: a * b,
    "paper_modulated_layers": paper_modulated_layers,
    "usable_cpus": usable_cpus,
    "sweep_name": sweep_name,
    "job_name": job_name,
}
for _name, _fn in RESOLVERS.items():
    if not OmegaConf.has_resolver(_name):
        OmegaConf.register_new_resolver(_name, _fn)


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


def compose_config(name: str, overrides: list[str]) -> DictConfig:
    """Compose `conf/<name>.yaml` with overrides, inside or outside a running Hydra app."""
    if GlobalHydra.instance().is_initialized():
        return compose(name, overrides=overrides)
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return compose(name, overrides=overrides)
