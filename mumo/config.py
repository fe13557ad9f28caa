"""Config helpers shared by the entry points: resolvers, instantiation, stored run configs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hydra
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.types import RunMode
from omegaconf import DictConfig, ListConfig, OmegaConf

from mumo.errors import ConfigError, MumoError
from mumo.threads import usable_cpus

CONFIG_DIR = Path(__file__).resolve().parent.parent / "conf"


def paper_modulated_layers(modes: int, modulation: str) -> ListConfig | None:
    """Layers the paper's commands modulated: hidden layer 1 only with 2 modes, else all (null).

    None for MAML and Multi-MAML, which modulate nothing. A ListConfig, not a list: OmegaConf
    cannot store a resolver's plain list in an untyped node (`--cfg job --resolve` failed on it).
    """
    return ListConfig([0]) if modes == 2 and modulation != "none" else None


def paper_classification_iterations(ways: int, per_dataset_batches: ListConfig | None = None) -> int:
    """Meta-iterations of the authors' classification README: 600,000 tasks at a meta-batch of 10
    for 5-way runs, 400,000 at a meta-batch of 5 for 20-way runs. Their per-dataset Multi-MAML
    (`per_dataset_batches`, its meta-batch per mode, given): 80,000 at a meta-batch of 4, which
    every dataset's network had but Omniglot's at 5-way (60,000 at 10)."""
    return 80_000 if ways == 20 or per_dataset_batches is not None else 60_000


def paper_multi_maml(setting: str, mix: str, datasets: ListConfig | None, modes: int, ways: int) -> ListConfig:
    """Multi-MAML's per-dataset inner rate (`setting` 'lr'), steps ('steps') or tasks per
    meta-batch ('tasks') in the authors' README, one per mode of the run: Omniglot alpha 0.4, one
    step and 10 tasks at 5-way (0.1, five steps and 4 tasks at 20-way); mini-ImageNet, FC100, CUB
    and Aircraft alpha 0.01, five steps and 4 tasks."""
    from mumo.classification.data import mix_datasets
    from mumo.classification.real import LOADERS

    names = mix_datasets(mix, modes, datasets)
    twenty_way = ways == 20
    authors = {"omniglot": {"lr": 0.1, "steps": 5, "tasks": 4} if twenty_way else {"lr": 0.4, "steps": 1, "tasks": 10}}
    others = {"lr": 0.01, "steps": 5, "tasks": 4}
    if missing := [n for n in names if n not in LOADERS]:
        raise ConfigError("method", f"multi_maml_per_dataset holds the authors' settings for the paper's datasets, "
                          f"not {', '.join(missing)}: set data.mix=paper, or use method=multi_maml")
    return ListConfig([authors.get(n, others)[setting] for n in names])


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


# Overrides that do not name a run: where it writes, how it logs, the evaluation-set sizes.
UNNAMED = ("data.val_", "data.test_", "data.eval_", "trainer.log_every_n_steps", "callbacks", "logger", "paths",
           "hydra", "threads", "ckpt_path", "val_every")


def swept_keys(sweep_dir: Path, sweeper_params: dict) -> set[str]:
    """Keys a multirun sweeps over: those of its command line (multirun.yaml) and of its
    experiment's `hydra.sweeper.params` given more than one value."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    saved = sweep_dir / "multirun.yaml"
    command_line = list(OmegaConf.load(saved).hydra.overrides.task) if saved.is_file() else []
    params = [f"{k}={v}" for k, v in (sweeper_params or {}).items()]
    return {o.key_or_group for o in OverridesParser.create().parse_overrides(command_line + params)
            if o.is_sweep_override()}


def run_name(overrides: list[str], swept: set[str] | None = None) -> str | None:
    """A run's name from its overrides: the swept keys' values in a sweep ('method=maml,modes=2'),
    else every override but those in UNNAMED. None where nothing is left."""
    pairs = [o.split("=", 1) for o in overrides if "=" in o]
    if swept is not None:
        chosen = [(k, v) for k, v in pairs if k in swept]
    else:
        chosen = [(k, v) for k, v in pairs if not k.lstrip("+~").startswith(UNNAMED)]
    return ",".join(f"{k}={v}" for k, v in sorted(chosen)) or None


def job_name() -> str | None:
    """`run_name` of the running Hydra job (the W&B run name), or None outside Hydra."""
    hc = hydra_runtime()
    if hc is None:
        return None
    swept = swept_keys(Path(hc.sweep.dir), hc.sweeper.get("params")) if hc.mode == RunMode.MULTIRUN else None
    return run_name(list(hc.overrides.task), swept)


def resumed_run(ckpt_path: str | None) -> Path | None:
    """The run directory a checkpoint `<run>/checkpoints/<name>.ckpt` (or `<run>` itself) belongs
    to, if it exists; None for no checkpoint or one kept elsewhere."""
    if not ckpt_path:
        return None
    path = Path(ckpt_path)
    run = path if path.is_dir() else path.parent.parent if path.parent.name == "checkpoints" else None
    return run if run is not None and (run / "checkpoints").is_dir() else None


def run_dir(ckpt_path: str | None, new_dir: str) -> str:
    """hydra.run.dir: a resumed run continues in its own directory; any other run gets `new_dir`."""
    run = resumed_run(ckpt_path)
    return str(run) if run is not None else new_dir


def config_subdir(ckpt_path: str | None, output_dir: str, stamp: str) -> str:
    """hydra.output_subdir: '.hydra', or '.hydra/resume-<stamp>' when a run resumes in its own
    directory `output_dir` (its original .hydra/config.yaml and overrides stay as they were)."""
    run = resumed_run(ckpt_path)
    in_place = run is not None and (run / ".hydra").is_dir() and run.resolve() == Path(output_dir).resolve()
    return f".hydra/resume-{stamp}" if in_place else ".hydra"


RESOLVERS = {
    "mul": lambda a, b: a * b,
    "total": lambda values: sum(values),
    "share": lambda total, modes: max(1, int(total / modes + 0.5)),  # tasks per mode: the balanced batch nearest total
    "div": lambda a, b: a // b,  # kept for classification checkpoints written before `share`
    "paper_modulated_layers": paper_modulated_layers,
    "paper_classification_iterations": paper_classification_iterations,
    "paper_multi_maml": paper_multi_maml,
    "usable_cpus": usable_cpus,
    "sweep_name": sweep_name,
    "job_name": job_name,
    "run_dir": run_dir,
    "config_subdir": config_subdir,
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
