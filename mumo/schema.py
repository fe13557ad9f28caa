"""Schemas of every config: types and valid ranges of each key, in one place (see `mumo.validation`).

The YAML files under `conf/` hold the defaults; these dataclasses say what each key may be. A
node with a `_target_` is checked against `SCHEMAS[_target_]`, so a new task family registers
schemas for its own data module and networks here and gets the same one-line errors.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Optional

from omegaconf import DictConfig

from mumo.classification.data import MIXES as IMAGE_MIXES, mix_datasets
from mumo.classification.offline import MODES as IMAGE_MODES
from mumo.classification.real import LOADERS as REAL_DATASETS
from mumo.core.engines import ENGINES, WEIGHT_UPDATES
from mumo.core.learner import LR_SCHEDULES
from mumo.core.modulation import MODULATIONS
from mumo.errors import ConfigError
from mumo.regression.functions import FAMILY_NAMES
from mumo.validation import (Above, AtLeast, AtMost, Distinct, Each, NonEmpty, OneOf, Rule, knob, open_schema,
                             validate)

ACCELERATORS = ("cpu", "gpu", "cuda", "auto")
PRECISIONS = ("32-true", "bf16-mixed")  # Lightning's names; bf16-mixed: matmuls and convolutions in bfloat16
RL_TASKS = ("navigation", "cheetah_speed", "cheetah_location")  # conf/task/<name>.yaml


class ThreadCount(Rule):
    """'auto' or a positive number of intra-op threads."""

    def __call__(self, value: Any) -> str | None:
        if value == "auto" or (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
            return None
        return f"must be auto or a number >= 1 (got {value})"


def threads_knob() -> Any:
    """Intra-op CPU threads: auto (measured per task family, see mumo.threads) or a number."""
    return knob(ThreadCount())


def balanced_meta_batch(v: dict) -> Iterator[tuple[str, str]]:
    """A data module's meta-batch holds the same number of tasks of every mode."""
    if v["meta_batch_size"] % v["modes"]:
        yield "meta_batch_size", f"must be a multiple of modes={v['modes']} (got {v['meta_batch_size']})"


def base_net_checks(v: dict, depth: int, layer: str, layers: str) -> Iterator[tuple[str, str]]:
    """A meta-model's modulated layers exist (`depth` of them, called `layers`), and Multi-MAML
    has no modulation."""
    for index in v["modulated_layers"] or ():
        if index >= depth:
            yield "modulated_layers", f"{layer} {index} does not exist ({layers} 0..{depth - 1})"
    yield from multi_maml_checks(v)


def multi_maml_checks(v: dict) -> Iterator[tuple[str, str]]:
    """Multi-MAML (one net per mode) has no modulation."""
    if v["per_mode_nets"] and v["modulation"] != "none":
        yield "modulation", (f"Multi-MAML is a baseline without modulation (got {v['modulation']}): "
                             "choose it with method=multi_maml")


def per_mode_inner_checks(v: dict) -> Iterator[tuple[str, str]]:
    """Per-mode inner rates and steps read the true mode label: Multi-MAML of a supervised family
    only, one value per mode."""
    for key in ("inner_lr_per_mode", "inner_steps_per_mode"):
        if (values := v[key]) is None:
            continue
        if v["model"].get("_target_") == "mumo.rl.module.RLMetaLearner":
            yield key, "the meta-RL family adapts every mode with inner_lr and inner_steps: leave it null"
        elif not v["per_mode_nets"]:
            yield key, "reads the true mode label, so only Multi-MAML may use it (method=multi_maml)"
        elif len(values) != v["modes"]:
            yield key, f"needs one value per mode: {v['modes']} (got {len(values)}: {values})"


# --- groups without a _target_ ------------------------------------------------------------------
@dataclass
class ModulationConfig:
    name: str = knob(OneOf(*MODULATIONS))
    layers: Optional[list[int]] = knob(Each(AtLeast(0)))
    inner_grad_clamp: Optional[float] = knob(Above(0))
    bias_transform: int = knob(AtLeast(0))


@dataclass
class PathsConfig:
    output_dir: str = knob()


# --- targets: the data modules, the meta-learners and their parts --------------------------------
@dataclass
class TaskDataConfig:
    """What every family's data module takes (`mumo.core.stream.TaskDataModule`)."""

    meta_batch_size: int = knob(AtLeast(1))
    seed: int = knob(AtLeast(0))
    val_tasks_per_mode: int = knob(AtLeast(1))
    test_tasks_per_mode: int = knob(AtLeast(1))
    val_seed: int = knob(AtLeast(0))
    test_seed: int = knob(AtLeast(0))
    eval_batch_size: int = knob(AtLeast(1))


@dataclass
class RegressionDataConfig(TaskDataConfig):
    _target_: str = "mumo.regression.data.RegressionDataModule"
    modes: int = knob(AtLeast(1))
    noise_std: float = knob(AtLeast(0))
    shots: int = knob(AtLeast(1))
    queries: int = knob(AtLeast(1))
    families: Optional[list[str]] = knob(NonEmpty(), Each(OneOf(*FAMILY_NAMES)), Distinct("family"))

    @staticmethod
    def cross_checks(v: dict) -> Iterator[tuple[str, str]]:
        families = v["families"]
        if families is None and v["modes"] > len(FAMILY_NAMES):
            yield "modes", f"there are {len(FAMILY_NAMES)} function families ({', '.join(FAMILY_NAMES)}) (got {v['modes']})"
        if families is not None and len(families) != v["modes"]:
            yield "families", f"names {len(families)} families but modes={v['modes']}: set modes={len(families)}"
        yield from balanced_meta_batch(v)


@dataclass
class RegressionMetaModelConfig:
    _target_: str = "mumo.regression.model.RegressionMetaModel"
    in_features: int = knob(AtLeast(1))
    out_features: int = knob(AtLeast(1))
    hidden_sizes: list[int] = knob(NonEmpty(), Each(AtLeast(1)))
    modulation: str = knob(OneOf(*MODULATIONS))
    modulated_layers: Optional[list[int]] = knob(Each(AtLeast(0)))
    bias_transform: int = knob(AtLeast(0))
    per_mode_nets: int = knob(AtLeast(0))
    encoder_hidden_size: int = knob(AtLeast(1))
    encoder_layers: int = knob(AtLeast(1))
    init_std: float = knob(Above(0))

    @staticmethod
    def cross_checks(v: dict) -> Iterator[tuple[str, str]]:
        yield from base_net_checks(v, len(v["hidden_sizes"]), "layer", "hidden layers")


@dataclass
class InnerSGDConfig:
    _target_: str = "mumo.core.inner_sgd.InnerSGD"
    steps: int = knob(AtLeast(0))
    lr: float = knob(Above(0))
    first_order: bool = knob()
    grad_clamp: Optional[float] = knob(Above(0))
    lr_per_mode: Optional[list[float]] = knob(NonEmpty(), Each(Above(0)), default=None)  # not in RL or older configs
    steps_per_mode: Optional[list[int]] = knob(NonEmpty(), Each(AtLeast(0)), default=None)


@dataclass
class SupervisedMetaLearnerConfig:
    _target_: str = "mumo.regression.module.RegressionMetaLearner"
    net: Any = knob()
    inner_loop: Any = knob()
    engine: str = knob(OneOf(*ENGINES))
    weight_updates: str = knob(OneOf(*WEIGHT_UPDATES))
    graph_step: Any = knob(OneOf(True, False, "auto"))
    lr: float = knob(Above(0))
    grad_clip: Optional[float] = knob(Above(0))
    lr_schedule: str = knob(OneOf(*LR_SCHEDULES))


# --- targets: the classification family ----------------------------------------------------------
@dataclass
class ClassificationDataConfig(TaskDataConfig):
    _target_: str = "mumo.classification.data.ClassificationDataModule"
    root: str = knob()
    modes: int = knob(AtLeast(1))
    mix: str = knob(OneOf(*IMAGE_MIXES))
    datasets: Optional[list[str]] = knob(NonEmpty(), Each(OneOf(*IMAGE_MODES, *REAL_DATASETS)), Distinct("dataset"))
    real_root: Optional[str] = knob()
    image_size: int = knob(AtLeast(16))
    ways: int = knob(AtLeast(2))
    shots: int = knob(AtLeast(1))
    queries: int = knob(AtLeast(1))
    # default: absent from the configs that checkpoints written before it store
    train_tasks_per_mode: Optional[list[int]] = knob(NonEmpty(), Each(AtLeast(1)), default=None)

    @staticmethod
    def cross_checks(v: dict) -> Iterator[tuple[str, str]]:
        mix = v.get("mix") or "offline"  # configs stored before data.mix existed
        if v["datasets"] is None and mix in IMAGE_MIXES:
            try:
                mix_datasets(mix, v["modes"])
            except ConfigError as error:  # the data module's own message
                yield error.key, error.reason
        if v["datasets"] is not None and len(v["datasets"]) != v["modes"]:
            yield "datasets", f"names {len(v['datasets'])} datasets but modes={v['modes']}: set modes={len(v['datasets'])}"
        if (counts := v.get("train_tasks_per_mode")) is None:
            yield from balanced_meta_batch(v)
        elif len(counts) != v["modes"]:
            yield "train_tasks_per_mode", f"needs one count per mode: {v['modes']} (got {len(counts)}: {counts})"
        elif sum(counts) != v["meta_batch_size"]:
            yield "train_tasks_per_mode", (f"sums to {sum(counts)}, but meta_batch_size={v['meta_batch_size']}: "
                                           "the meta-batch is these tasks")


@dataclass
class ClassificationMetaModelConfig:
    _target_: str = "mumo.classification.model.ClassificationMetaModel"
    in_channels: int = knob(AtLeast(1))
    channels: list[int] = knob(NonEmpty(), Each(AtLeast(1)))
    num_classes: int = knob(AtLeast(2))
    modulation: str = knob(OneOf(*MODULATIONS))
    modulated_layers: Optional[list[int]] = knob(Each(AtLeast(0)))
    per_mode_nets: int = knob(AtLeast(0))
    embedding_size: int = knob(AtLeast(1))
    zero_head: bool = knob()

    @staticmethod
    def cross_checks(v: dict) -> Iterator[tuple[str, str]]:
        yield from base_net_checks(v, len(v["channels"]), "block", "conv blocks")


# --- targets: the RL family (environments, policy, ProMP) ----------------------------------------
@dataclass
class RLDataConfig(TaskDataConfig):
    _target_: str = "mumo.rl.data.RLDataModule"
    env: Any = knob()

    @staticmethod
    def cross_checks(v: dict) -> Iterator[tuple[str, str]]:
        yield from balanced_meta_batch({**v, "modes": v["env"]["modes"]})


@dataclass
class NavigationConfig:
    _target_: str = "mumo.rl.navigation.Navigation"
    modes: int = knob(OneOf(2, 4, 6))
    noise_std: float = knob(AtLeast(0))


@dataclass
class HalfCheetahTargetConfig:
    _target_: str = "mumo.rl.half_cheetah.HalfCheetahTarget"
    target: str = knob(OneOf("speed", "location"))
    modes: int = knob(AtLeast(1))
    centres: list[float] = knob(NonEmpty())
    noise_std: float = knob(AtLeast(0))
    ctrl_cost: float = knob(AtLeast(0))

    @staticmethod
    def cross_checks(v: dict) -> Iterator[tuple[str, str]]:
        if len(v["centres"]) != v["modes"]:
            yield "centres", f"needs one centre per mode: {v['modes']} (got {len(v['centres'])})"


@dataclass
class MetaPolicyConfig:
    _target_: str = "mumo.rl.policy.MetaPolicy"
    observation_size: int = knob(AtLeast(1))
    action_size: int = knob(AtLeast(1))
    hidden_sizes: list[int] = knob(NonEmpty(), Each(AtLeast(1)))
    modulation: str = knob(OneOf(*MODULATIONS))
    per_mode_nets: int = knob(AtLeast(0))
    encoder_size: int = knob(AtLeast(1))

    cross_checks = staticmethod(multi_maml_checks)


@dataclass
class ProMPConfig:
    _target_: str = "mumo.rl.promp.ProMP"
    inner_loop: Any = knob()
    clip_eps: float = knob(Above(0))
    inner_kl_penalty: float = knob(AtLeast(0))
    after_modulation_weight: float = knob(AtLeast(0))


@dataclass
class RLMetaLearnerConfig:
    _target_: str = "mumo.rl.module.RLMetaLearner"
    policy: Any = knob()
    algorithm: Any = knob()
    rollouts: int = knob(AtLeast(1))
    horizon: int = knob(AtLeast(1))
    policy_scale: float = knob(Above(0))
    promp_steps: int = knob(AtLeast(1))
    lr: float = knob(Above(0))
    lr_schedule: str = knob(OneOf(*LR_SCHEDULES))
    eval_steps: int = knob(AtLeast(0))
    seed: int = knob(AtLeast(0))
    eval_seed: int = knob(AtLeast(0))


# --- targets: Lightning's Trainer, loggers and callbacks (open: other arguments pass through) -----
@open_schema
@dataclass
class TrainerConfig:
    _target_: str = "lightning.Trainer"
    accelerator: str = knob(OneOf(*ACCELERATORS))
    devices: Any = knob()
    max_steps: int = knob(AtLeast(1))
    val_check_interval: int = knob(AtLeast(1))
    check_val_every_n_epoch: Optional[int] = knob(OneOf(None, why="the task stream has no epochs"))
    num_sanity_val_steps: int = knob(AtLeast(0))
    log_every_n_steps: int = knob(AtLeast(1))
    inference_mode: bool = knob(OneOf(False, why="meta-evaluation adapts with gradients"))
    enable_model_summary: bool = knob()
    default_root_dir: str = knob()
    # null (float32) by default, as in the configs that checkpoints written before it store
    precision: Optional[str] = knob(OneOf(*PRECISIONS), default=None)

    @staticmethod
    def cross_checks(v: dict) -> Iterator[tuple[str, str]]:
        for key in ("gradient_clip_val", "gradient_clip_algorithm"):
            if v.get(key) is not None:
                yield key, ("the meta-learner clips the base net and the encoder + heads separately "
                            "to model.grad_clip (set that instead)")


@open_schema
@dataclass
class FileLoggerConfig:
    """CSVLogger (mumo's and Lightning's) and TensorBoardLogger."""

    _target_: str = "mumo.loggers.CSVLogger"
    save_dir: str = knob()
    name: str = knob()
    version: Any = knob()


@open_schema
@dataclass
class WandbLoggerConfig:
    _target_: str = "mumo.loggers.WandbLogger"
    project: str = knob()
    entity: Optional[str] = knob()
    group: Optional[str] = knob()
    name: Optional[str] = knob()
    tags: list[str] = knob()
    job_type: str = knob()
    save_dir: str = knob()
    mode: str = knob(OneOf("online", "offline", "disabled", "shared"))
    log_model: Any = knob(OneOf(True, False, "all"))


@open_schema
@dataclass
class CheckpointConfig:
    _target_: str = "lightning.pytorch.callbacks.ModelCheckpoint"
    dirpath: str = knob()
    save_last: bool = knob()
    save_top_k: int = knob(AtLeast(-1))
    every_n_train_steps: int = knob(AtLeast(1))


@dataclass
class LastCheckpointConfig:
    _target_: str = "mumo.callbacks.LastCheckpoint"
    dirpath: str = knob()


@dataclass
class ProgressBarConfig:
    _target_: str = "mumo.callbacks.MetaIterationProgressBar"
    refresh_rate: int = knob(AtLeast(0))


SCHEMAS: dict[str, type] = {
    "mumo.regression.data.RegressionDataModule": RegressionDataConfig,
    "mumo.rl.data.RLDataModule": RLDataConfig,
    "mumo.rl.navigation.Navigation": NavigationConfig,
    "mumo.rl.half_cheetah.HalfCheetahTarget": HalfCheetahTargetConfig,
    "mumo.rl.module.RLMetaLearner": RLMetaLearnerConfig,
    "mumo.rl.policy.MetaPolicy": MetaPolicyConfig,
    "mumo.rl.promp.ProMP": ProMPConfig,
    "mumo.regression.module.RegressionMetaLearner": SupervisedMetaLearnerConfig,
    "mumo.classification.module.ClassificationMetaLearner": SupervisedMetaLearnerConfig,
    "mumo.classification.data.ClassificationDataModule": ClassificationDataConfig,
    "mumo.classification.model.ClassificationMetaModel": ClassificationMetaModelConfig,
    "mumo.regression.model.RegressionMetaModel": RegressionMetaModelConfig,
    "mumo.core.inner_sgd.InnerSGD": InnerSGDConfig,
    "lightning.Trainer": TrainerConfig,
    "mumo.loggers.CSVLogger": FileLoggerConfig,
    "lightning.pytorch.loggers.CSVLogger": FileLoggerConfig,
    "lightning.pytorch.loggers.TensorBoardLogger": FileLoggerConfig,
    "mumo.loggers.WandbLogger": WandbLoggerConfig,
    "lightning.pytorch.loggers.WandbLogger": WandbLoggerConfig,
    "lightning.pytorch.callbacks.ModelCheckpoint": CheckpointConfig,
    "mumo.callbacks.LastCheckpoint": LastCheckpointConfig,
    "mumo.callbacks.MetaIterationProgressBar": ProgressBarConfig,
}


# --- entry points -------------------------------------------------------------------------------
@dataclass
class TrainConfig:
    """conf/train.yaml: the top-level knobs first (errors name them), then the groups."""

    seed: int = knob(AtLeast(0))
    modes: int = knob(AtLeast(1))
    tasks_per_mode: int = knob(AtLeast(1))
    meta_batch_size: int = knob(AtLeast(1))
    inner_steps: int = knob(AtLeast(0))
    inner_lr: float = knob(Above(0))
    meta_lr: float = knob(Above(0))
    lr_schedule: str = knob(OneOf(*LR_SCHEDULES))
    first_order: bool = knob()
    per_mode_nets: int = knob(AtLeast(0))
    # default: absent from the configs that checkpoints written before them store
    inner_lr_per_mode: Optional[list[float]] = knob(NonEmpty(), Each(Above(0)), default=None)
    inner_steps_per_mode: Optional[list[int]] = knob(NonEmpty(), Each(AtLeast(0)), default=None)
    engine: str = knob(OneOf(*ENGINES))
    weight_updates: str = knob(OneOf(*WEIGHT_UPDATES))
    graph_step: Any = knob(OneOf(True, False, "auto"))
    val_every: int = knob(AtLeast(1))
    threads: Any = threads_knob()
    ckpt_path: Optional[str] = knob()
    modulation: ModulationConfig = field(default_factory=ModulationConfig)
    data: Any = knob()
    model: Any = knob()
    trainer: Any = knob()
    logger: Optional[dict[str, Any]] = knob()
    callbacks: Optional[dict[str, Any]] = knob()
    paths: PathsConfig = field(default_factory=PathsConfig)

    @staticmethod
    def cross_checks(v: dict) -> Iterator[tuple[str, str]]:
        nets, modes = v["per_mode_nets"], v["modes"]
        if nets not in (0, modes):
            yield "per_mode_nets", f"Multi-MAML needs one net per mode: 0 or modes={modes} (got {nets})"
        yield from per_mode_inner_checks(v)
        if v["trainer"].get("precision") == "bf16-mixed" and \
                v["data"].get("_target_") != "mumo.classification.data.ClassificationDataModule":
            yield "trainer.precision", ("bf16-mixed is for task=classification, whose convolutions it speeds up; small "
                                        "networks do not gain (the regression MLP ran 1.25x slower): leave it null")


@dataclass
class EvaluateConfig:
    """conf/evaluate.yaml; the rebuilt training config is then checked as a TrainConfig."""

    ckpt_path: str = knob()
    inner_steps: Optional[int] = knob(AtLeast(0))
    engine: Optional[str] = knob(OneOf(*ENGINES))
    weight_updates: Optional[str] = knob(OneOf(*WEIGHT_UPDATES))
    test_tasks_per_mode: Optional[int] = knob(AtLeast(1))
    accelerator: str = knob(OneOf(*ACCELERATORS))
    threads: Any = threads_knob()
    paths: PathsConfig = field(default_factory=PathsConfig)


@dataclass
class BenchConfig:
    """conf/bench.yaml."""

    variants: list[str] = knob(NonEmpty(), Each(OneOf("l2l", "dense", "low_rank", "graph")))
    modulations: list[str] = knob(NonEmpty(), Each(OneOf(*MODULATIONS)))
    tasks: list[int] = knob(NonEmpty(), Each(AtLeast(1)))
    l2l_max_tasks: int = knob(AtLeast(0))
    modes: int = knob(AtLeast(1), AtMost(len(FAMILY_NAMES)))
    inner_steps: int = knob(AtLeast(0))
    first_order: bool = knob()
    paper_layers: bool = knob()
    rounds: int = knob(AtLeast(1))
    round_seconds: float = knob(Above(0))
    warmup: int = knob(AtLeast(0))
    entry_point_steps: int = knob(AtLeast(0))
    eval_tasks_per_mode: int = knob(AtLeast(0))
    load_tasks: int = knob(AtLeast(0))
    load_modulation: str = knob(OneOf(*MODULATIONS))
    rl_tasks: list[str] = knob(Each(OneOf(*RL_TASKS)))
    rl_modulations: list[str] = knob(Each(OneOf(*MODULATIONS)))
    rl_rounds: int = knob(AtLeast(1))
    rl_overrides: list[str] = knob()
    vector_envs: list[str] = knob(Each(OneOf(*RL_TASKS)))
    vector_envs_n: int = knob(AtLeast(1))
    vector_env_steps: int = knob(AtLeast(1))
    classification_modulations: list[str] = knob(Each(OneOf(*MODULATIONS)))
    classification_rounds: int = knob(AtLeast(1))
    classification_precisions: list[str] = knob(NonEmpty(), Each(OneOf(*PRECISIONS)))
    classification_overrides: list[str] = knob()
    device: str = knob(OneOf("cpu", "cuda"))
    ckpt_path: Optional[str] = knob()
    seed: int = knob(AtLeast(0))
    threads: Any = threads_knob()
    paths: PathsConfig = field(default_factory=PathsConfig)

    @staticmethod
    def cross_checks(v: dict) -> Iterator[tuple[str, str]]:
        for key in ("tasks", "load_tasks"):
            for tasks in v[key] if isinstance(v[key], list) else [v[key]]:
                if tasks % v["modes"]:
                    yield key, f"must be multiples of modes={v['modes']} (got {tasks})"


def check_train(cfg: DictConfig) -> None:
    validate(cfg, TrainConfig, SCHEMAS)


def check_evaluate(cfg: DictConfig) -> None:
    validate(cfg, EvaluateConfig, SCHEMAS)


def check_bench(cfg: DictConfig) -> None:
    validate(cfg, BenchConfig, SCHEMAS)
