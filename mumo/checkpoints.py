"""Loading our checkpoints safely (no arbitrary unpickling) with one-line errors."""

from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from mumo.config import instantiate
from mumo.errors import MumoError


def find_checkpoint(path: str | Path) -> Path:
    """`path` itself, or a run directory's checkpoints/last.ckpt."""
    path = Path(path)
    if path.is_dir():
        if not (path / "checkpoints" / "last.ckpt").is_file():
            raise MumoError(f"ckpt_path: {path} is a directory without checkpoints/last.ckpt")
        return path / "checkpoints" / "last.ckpt"
    if not path.is_file():
        raise MumoError(f"ckpt_path: no such file: {path}")
    return path


def load_checkpoint(path: str | Path) -> dict:
    """A checkpoint written by mumo.train (a file or a run directory, see `find_checkpoint`),
    loaded with `weights_only=True` on the CPU."""
    path = find_checkpoint(path)
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for truncated / foreign files
        raise MumoError(f"ckpt_path: {path} is not a readable checkpoint ({type(err).__name__})") from None
    if not isinstance(checkpoint, dict) or "config" not in checkpoint.get("hyper_parameters", {}):
        raise MumoError(f"ckpt_path: {path} was not written by mumo.train (no stored config)")
    return checkpoint


def stored_config(checkpoint: dict) -> DictConfig:
    """The training run's config, with its interpolations, as stored in the checkpoint."""
    return OmegaConf.create(checkpoint["hyper_parameters"]["config"])


def restore_config(checkpoint: dict, overrides: dict[str, object] | None = None) -> DictConfig:
    """The stored run's config with `overrides` (keys of the training config, e.g. 'inner_steps',
    mapped to new values), which propagate through the config's interpolations."""
    run_cfg = stored_config(checkpoint)
    for key, value in (overrides or {}).items():
        OmegaConf.update(run_cfg, key, value, force_add=True)
    return run_cfg


def restore_run(run_cfg: DictConfig, checkpoint: dict) -> tuple[object, object]:
    """(data module, meta-learner with the checkpoint's weights) of a stored run's config."""
    datamodule = instantiate(run_cfg.data)
    module = instantiate(run_cfg.model, **datamodule.learner_inputs())
    module.load_state_dict(checkpoint["state_dict"])
    module.on_load_checkpoint(checkpoint)  # its training history (mumo.provenance.TrainingClock)
    return datamodule, module


def check_weights_fit(module: torch.nn.Module, state_dict: dict, model: str, advice: str = "") -> None:
    """One line naming `ckpt_path` where `state_dict` would not load into `module` (names or shapes
    differ: another task, method or network size); `model` names the model, `advice` ends the line."""
    if (problem := _weights_mismatch(module, state_dict)) is not None:
        raise MumoError(f"ckpt_path: its weights do not fit the model of {model} ({problem}){advice}")


def _weights_mismatch(module: torch.nn.Module, state_dict: dict) -> str | None:
    """How `state_dict` differs from `module`'s own weights, or None where it loads into it."""
    own = module.state_dict()
    missing, unexpected = sorted(own.keys() - state_dict.keys()), sorted(state_dict.keys() - own.keys())
    reshaped = sorted(k for k in own.keys() & state_dict.keys() if own[k].shape != state_dict[k].shape)
    if reshaped:
        name = reshaped[0]
        return f"{name} is {list(state_dict[name].shape)} there, {list(own[name].shape)} here"
    if missing:
        return f"{len(missing)} weights missing, e.g. {missing[0]}"
    if unexpected:
        return f"{len(unexpected)} weights this model does not have, e.g. {unexpected[0]}"
    return None
