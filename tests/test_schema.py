"""The config schema: every group's keys have a type and a valid range, checked before any work, each
problem one line naming the key; every config the project ships passes it."""

import itertools
from pathlib import Path

import pytest
import yaml
from helpers import FAST, compose_train, run_cli
from hydra import compose, initialize_config_dir

from mumo.config import CONFIG_DIR
from mumo.errors import ConfigError
from mumo.schema import check_bench, check_evaluate, check_train

# (override, the one-line message), for every group: a wrong type and a value out of range
TRAIN_CASES = [
    # top level
    ("seed=abc", "seed: Value 'abc' of type 'str' could not be converted to Integer"),
    ("seed=-1", "seed: must be >= 0 (got -1)"),
    ("modes=6", "modes: there are 5 function families (sinusoid, linear, quadratic, tanh, abs) (got 6)"),
    ("modes=0", "modes: must be >= 1 (got 0)"),
    ("tasks_per_mode=0", "tasks_per_mode: must be >= 1 (got 0)"),
    ("meta_batch_size=51", "meta_batch_size: must be a multiple of modes=2 (got 51)"),
    ("inner_steps=1.5", "inner_steps: Value '1.5' of type 'float' could not be converted to Integer"),
    ("inner_steps=-1", "inner_steps: must be >= 0 (got -1)"),
    ("inner_lr=-1", "inner_lr: must be > 0 (got -1.0)"),
    ("inner_lr=nan", "inner_lr: must be > 0 (got nan)"),
    ("meta_lr=0", "meta_lr: must be > 0 (got 0.0)"),
    ("lr_schedule=step", "lr_schedule: must be one of constant, cosine (got step)"),
    ("first_order=maybe", "first_order: Value 'maybe' is not a valid bool (type str)"),
    ("engine=jax", "engine: must be one of batched, l2l (got jax)"),
    ("weight_updates=sparse", "weight_updates: must be one of auto, dense, low_rank (got sparse)"),
    ("graph_step=1", "graph_step: must be one of true, false, auto (got 1)"),
    ("val_every=0", "val_every: must be >= 1 (got 0)"),
    ("threads=0", "threads: must be auto or a number >= 1 (got 0)"),
    ("threads=many", "threads: must be auto or a number >= 1 (got many)"),
    # modulation
    ("modulation.name=gelu", "modulation.name: must be one of none, softmax, sigmoid, film (got gelu)"),
    ("modulation.layers=[5]", "modulation.layers: layer 5 does not exist (hidden layers 0..2)"),
    ("modulation.layers=[-1]", "modulation.layers: every element must be >= 0 (got element -1)"),
    ("modulation.layers=first", "modulation.layers: must be a list (got first)"),
    ("modulation.inner_grad_clamp=0", "modulation.inner_grad_clamp: must be > 0 (got 0.0)"),
    ("modulation.bias_transform=-2", "modulation.bias_transform: must be >= 0 (got -2)"),
    # data
    ("data.shots=0", "data.shots: must be >= 1 (got 0)"),
    ("data.queries=x", "data.queries: Value 'x' of type 'str' could not be converted to Integer"),
    ("data.noise_std=-0.1", "data.noise_std: must be >= 0 (got -0.1)"),
    ("data.val_tasks_per_mode=0", "data.val_tasks_per_mode: must be >= 1 (got 0)"),
    ("data.test_seed=-5", "data.test_seed: must be >= 0 (got -5)"),
    ("data.eval_batch_size=0", "data.eval_batch_size: must be >= 1 (got 0)"),
    ("data.families=[sinusoid,cubic]", "data.families: every element must be one of sinusoid, linear, quadratic, "
                                       "tanh, abs (got element cubic)"),
    ("data.families=[sinusoid,linear,tanh]", "data.families: names 3 families but modes=2: set modes=3"),
    ("data.families=[tanh,tanh]", "data.families: must not repeat a family (got ['tanh', 'tanh'])"),
    ("+data.extra=1", "data.extra: Key 'extra' not in 'RegressionDataConfig'"),
    # model
    ("model.net.hidden_sizes=[]", "model.net.hidden_sizes: must not be empty"),
    ("model.net.hidden_sizes=[100,0]", "model.net.hidden_sizes: every element must be >= 1 (got element 0)"),
    ("model.net.init_std=0", "model.net.init_std: must be > 0 (got 0.0)"),
    ("model.net.encoder_layers=0", "model.net.encoder_layers: must be >= 1 (got 0)"),
    ("per_mode_nets=-1", "per_mode_nets: must be >= 0 (got -1)"),
    ("per_mode_nets=2", "modulation.name: Multi-MAML is a baseline without modulation (got film): "
                        "choose it with method=multi_maml"),
    ("model.inner_loop.lr=0", "model.inner_loop.lr: must be > 0 (got 0.0)"),
    ("model.grad_clip=-2", "model.grad_clip: must be > 0 (got -2.0)"),
    ("model.lr=fast", "model.lr: Value 'fast' of type 'str' could not be converted to Float"),
    # trainer
    ("trainer.max_steps=0", "trainer.max_steps: must be >= 1 (got 0)"),
    ("trainer.max_steps=ten", "trainer.max_steps: Value 'ten' of type 'str' could not be converted to Integer"),
    ("trainer.accelerator=tpu", "trainer.accelerator: must be one of cpu, gpu, cuda, auto (got tpu)"),
    ("trainer.precision=16-mixed", "trainer.precision: must be one of 32-true, bf16-mixed (got 16-mixed)"),
    ("trainer.precision=bf16-mixed", "trainer.precision: bf16-mixed is for task=classification, whose convolutions "
                                     "it speeds up; small networks do not gain (the regression MLP ran 1.25x slower): "
                                     "leave it null"),
    ("trainer.inference_mode=true", "trainer.inference_mode: must be false: meta-evaluation adapts with gradients "
                                    "(got true)"),
    ("trainer.check_val_every_n_epoch=1", "trainer.check_val_every_n_epoch: must be null: the task stream has no "
                                          "epochs (got 1)"),
    ("trainer.log_every_n_steps=0", "trainer.log_every_n_steps: must be >= 1 (got 0)"),
    ("+trainer.gradient_clip_val=1.0", "trainer.gradient_clip_val: the meta-learner clips the base net and the "
                                       "encoder + heads separately to model.grad_clip (set that instead)"),
    # logger and callbacks
    ("logger.csv.save_dir=[1]", "logger.csv.save_dir: Cannot convert 'ListConfig' to string: '[1]'"),
    ("callbacks.progress_bar.refresh_rate=-1", "callbacks.progress_bar.refresh_rate: must be >= 0 (got -1)"),
    ("callbacks.last_checkpoint.dirpath=[1]", "callbacks.last_checkpoint.dirpath: Cannot convert 'ListConfig' to "
                                              "string: '[1]'"),
    ("+callbacks.last_checkpoint.save_top_k=3", "callbacks.last_checkpoint.save_top_k: Key 'save_top_k' not in "
                                                "'LastCheckpointConfig'"),
]


@pytest.mark.parametrize("override, message", TRAIN_CASES, ids=[c[0] for c in TRAIN_CASES])
def test_train_schema_rejects_wrong_types_and_out_of_range_values(tmp_path: Path, override: str, message: str):
    with pytest.raises(ConfigError) as err:
        check_train(compose_train(tmp_path, override))
    assert str(err.value) == message


@pytest.mark.parametrize("override, message", [
    ("logger=wandb logger.wandb.mode=cloud", "logger.wandb.mode: must be one of online, offline, disabled, shared "
                                             "(got cloud)"),
    ("trainer=ddp per_mode_nets=2", "modulation.name: Multi-MAML is a baseline without modulation "
                                                "(got film): choose it with method=multi_maml"),
    ("method=multi_maml per_mode_nets=3", "per_mode_nets: Multi-MAML needs one net per "
                                                      "mode: 0 or modes=2 (got 3)"),
    ("method=maml inner_lr_per_mode=[0.1,0.2]", "inner_lr_per_mode: reads the true mode label, so only "
                                                "Multi-MAML may use it (method=multi_maml)"),
    ("method=multi_maml inner_steps_per_mode=[1]", "inner_steps_per_mode: needs one value per mode: 2 (got 1: [1])"),
    ("method=multi_maml inner_lr_per_mode=[0.1,0]", "inner_lr_per_mode: every element must be > 0 (got element 0.0)"),
    ("task=navigation method=multi_maml inner_lr_per_mode=[0.1,0.2]",
     "inner_lr_per_mode: the meta-RL family adapts every mode with inner_lr and inner_steps: leave it null"),
    ("task=classification data.train_tasks_per_mode=[6,4,2]",
     "data.train_tasks_per_mode: needs one count per mode: 2 (got 3: [6, 4, 2])"),
    ("task=classification data.train_tasks_per_mode=[6,3]",
     "data.train_tasks_per_mode: sums to 9, but meta_batch_size=8: the meta-batch is these tasks"),
    ("task=classification method=multi_maml_per_dataset",
     "method: multi_maml_per_dataset holds the authors' settings for the paper's datasets, not digits, emoji: "
     "set data.mix=paper, or use method=multi_maml"),
])
def test_other_group_options_and_cross_key_constraints(tmp_path: Path, override: str, message: str):
    with pytest.raises(ConfigError) as err:
        check_train(compose_train(tmp_path, *override.split()))
    assert str(err.value) == message


@pytest.mark.parametrize("override, message", [
    ("modes=3", "modes: must be one of 2, 4, 6 (got 3)"),
    ("model.horizon=0", "model.horizon: must be >= 1 (got 0)"),
    ("model.rollouts=-2", "model.rollouts: must be >= 1 (got -2)"),
    ("model.policy_scale=0", "model.policy_scale: must be > 0 (got 0.0)"),
    ("model.promp_steps=0", "model.promp_steps: must be >= 1 (got 0)"),
    ("model.algorithm.clip_eps=0", "model.algorithm.clip_eps: must be > 0 (got 0.0)"),
    ("model.policy.hidden_sizes=[]", "model.policy.hidden_sizes: must not be empty"),
    ("data.env.noise_std=-1", "data.env.noise_std: must be >= 0 (got -1.0)"),
    ("inner_lr=0", "inner_lr: must be > 0 (got 0.0)"),
    ("tasks_per_mode=x", "tasks_per_mode: Value 'x' of type 'str' could not be converted to Integer"),
    ("data.meta_batch_size=5", "data.meta_batch_size: must be a multiple of modes=2 (got 5)"),
])
def test_navigation_schema(tmp_path: Path, override: str, message: str):
    with pytest.raises(ConfigError) as err:
        check_train(compose_train(tmp_path, "task=navigation", override, fast=False))
    assert str(err.value) == message


@pytest.mark.parametrize("task, override, message", [
    ("cheetah_speed", "data.env.target=fast", "data.env.target: must be one of speed, location (got fast)"),
    ("cheetah_speed", "modes=3", "data.env.centres: needs one centre per mode: 3 (got 2)"),
    ("cheetah_location", "data.env.noise_std=-0.5", "data.env.noise_std: must be >= 0 (got -0.5)"),
    ("cheetah_location", "data.env.ctrl_cost=-1", "data.env.ctrl_cost: must be >= 0 (got -1.0)"),
    ("cheetah_location", "model.horizon=0", "model.horizon: must be >= 1 (got 0)"),
])
def test_half_cheetah_schema(tmp_path: Path, task: str, override: str, message: str):
    with pytest.raises(ConfigError) as err:
        check_train(compose_train(tmp_path, f"task={task}", override, fast=False))
    assert str(err.value) == message


@pytest.mark.parametrize("task, override, message", [
    ("classification", "modes=4", "modes: the offline mixes hold 2, 3 or 5 modes unless data.datasets "
                                  "names them (got 4)"),
    ("classification", "data.datasets=[digits,imagenet]", "data.datasets: every element must be one of digits, "
     "fashion, animals, emoji, flags, omniglot, miniimagenet, fc100, cub, aircraft (got element imagenet)"),
    ("classification", "data.datasets=[digits,emoji,flags]", "data.datasets: names 3 datasets but modes=2: set modes=3"),
    ("classification", "data.datasets=[digits,digits]",
     "data.datasets: must not repeat a dataset (got ['digits', 'digits'])"),
    ("classification", "data.ways=1", "data.ways: must be >= 2 (got 1)"),
    ("classification", "data.mix=web", "data.mix: must be one of offline, paper (got web)"),
    ("classification", "model.net.modulated_layers=[4]", "model.net.modulated_layers: block 4 does not exist "
                                                         "(conv blocks 0..3)"),
])
def test_classification_schema(tmp_path: Path, task: str, override: str, message: str):
    with pytest.raises(ConfigError) as err:
        check_train(compose_train(tmp_path, f"task={task}", override, fast=False))
    assert str(err.value) == message


def compose_other(name: str, *overrides: str):
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return compose(name, overrides=["paths.output_dir=unused", *overrides])


@pytest.mark.parametrize("name, check, override, message", [
    ("evaluate", check_evaluate, "inner_steps=-1", "inner_steps: must be >= 0 (got -1)"),
    ("evaluate", check_evaluate, "engine=jax", "engine: must be one of batched, l2l (got jax)"),
    ("evaluate", check_evaluate, "test_tasks_per_mode=many", "test_tasks_per_mode: Value 'many' of type 'str' could "
                                                             "not be converted to Integer"),
    ("evaluate", check_evaluate, "threads=-3", "threads: must be auto or a number >= 1 (got -3)"),
    ("bench", check_bench, "rounds=0", "rounds: must be >= 1 (got 0)"),
    ("bench", check_bench, "variants=[l2l,jit]", "variants: every element must be one of l2l, dense, low_rank, graph "
                                                 "(got element jit)"),
    ("bench", check_bench, "tasks=[50,51]", "tasks: must be multiples of modes=2 (got 51)"),
    ("bench", check_bench, "round_seconds=fast", "round_seconds: Value 'fast' of type 'str' could not be converted "
                                                 "to Float"),
    ("bench", check_bench, "device=tpu", "device: must be one of cpu, cuda (got tpu)"),
    ("bench", check_bench, "classification_precisions=[bf16]", "classification_precisions: every element must be one "
                                                               "of 32-true, bf16-mixed (got element bf16)"),
])
def test_evaluate_and_bench_schemas(name, check, override, message):
    cfg = compose_other(name, override, *(["ckpt_path=x.ckpt"] if name == "evaluate" else []))
    with pytest.raises(ConfigError) as err:
        check(cfg)
    assert str(err.value) == message


def test_every_shipped_config_passes(tmp_path: Path):
    for method, modes in itertools.product(["maml", "multi_maml", "mumomaml_softmax", "mumomaml_sigmoid",
                                            "mumomaml_film"], [2, 3, 5]):
        for experiment in ([], ["experiment=table1"], ["experiment=five_modes"]):
            check_train(compose_train(tmp_path, f"method={method}", f"modes={modes}", *experiment, fast=False))
    for group, options in {"logger": ["csv", "tensorboard", "wandb", "none"], "trainer": ["cpu", "gpu", "ddp"],
                           "model": ["mlp"], "modulation": ["none", "softmax", "sigmoid", "film"],
                           "experiment": ["quick"], "task": ["regression", "navigation", "cheetah_speed",
                                                             "cheetah_location"]}.items():
        for option in options:
            check_train(compose_train(tmp_path, f"{group}={option}", fast=False))
    for modes, method in itertools.product([2, 3, 5], ["maml", "multi_maml", "mumomaml_film", "mumomaml_sigmoid"]):
        cfg = compose_train(tmp_path, "task=classification", f"modes={modes}", f"method={method}", fast=False)
        check_train(cfg)
        tens = {2: 10, 3: 9, 5: 10}[modes]
        assert cfg.data.meta_batch_size == tens  # the original's 10, split evenly
        for episodes, (ways, shots, batch, steps) in {"5w1s": (5, 1, tens, 60_000), "5w5s": (5, 5, tens, 60_000),
                                                      "20w1s": (20, 1, {2: 6, 3: 6, 5: 5}[modes], 80_000)}.items():
            cfg = compose_train(tmp_path, "experiment=classification_paper", "data.real_root=/data", f"modes={modes}",
                                f"method={method}", f"episodes={episodes}", fast=False)
            check_train(cfg)
            assert (cfg.data.ways, cfg.data.shots, cfg.data.queries, cfg.data.image_size, cfg.data.mix) == (
                ways, shots, 15, 84, "paper")
            assert (cfg.data.meta_batch_size, cfg.trainer.max_steps) == (batch, steps)  # the authors' README
            assert cfg.model.inner_loop.lr_per_mode is None and cfg.model.inner_loop.steps_per_mode is None


def test_multi_maml_per_dataset_takes_the_authors_settings_of_each_dataset(tmp_path: Path):
    """Omniglot alpha 0.4, one step and 10 tasks per meta-batch at 5-way (0.1, five steps, 4 tasks
    at 20-way), the other datasets 0.01, five steps and 4 tasks, in the run's order of datasets;
    80,000 iterations (the authors' for every network but Omniglot's 5-way one)."""
    for modes, episodes in itertools.product([2, 3, 5], ["5w1s", "5w5s", "20w1s"]):
        cfg = compose_train(tmp_path, "experiment=classification_paper", "data.real_root=/data", f"modes={modes}",
                            "method=multi_maml_per_dataset", f"episodes={episodes}", fast=False)
        check_train(cfg)
        omniglot = (0.1, 5, 4) if episodes == "20w1s" else (0.4, 1, 10)
        loop = cfg.model.inner_loop
        assert (list(loop.lr_per_mode), list(loop.steps_per_mode), list(cfg.data.train_tasks_per_mode)) == (
            [omniglot[0]] + [0.01] * (modes - 1), [omniglot[1]] + [5] * (modes - 1), [omniglot[2]] + [4] * (modes - 1))
        assert (cfg.model.net.per_mode_nets, cfg.model.net.modulation) == (modes, "none")
        assert (cfg.data.meta_batch_size, cfg.trainer.max_steps) == (omniglot[2] + 4 * (modes - 1), 80_000)
    cfg = compose_train(tmp_path, "task=classification", "data.mix=paper", "data.real_root=/data",
                        "data.datasets=[cub,omniglot]", "method=multi_maml_per_dataset", fast=False)
    assert list(cfg.model.inner_loop.lr_per_mode) == [0.01, 0.4]
    assert (list(cfg.data.train_tasks_per_mode), cfg.data.meta_batch_size) == ([4, 10], 14)
    with pytest.raises(ConfigError, match="^modes: the paper mixes hold 2, 3 or 5 modes unless data.datasets"):
        check_train(compose_train(tmp_path, "experiment=classification_paper", "data.real_root=/data", "modes=4",
                                  "method=multi_maml_per_dataset", fast=False))
    for task, method in itertools.product(["navigation", "cheetah_speed", "cheetah_location"],
                                          ["maml", "multi_maml", "mumomaml_film"]):
        for experiment in ([], ["experiment=cheetah_paper_scale"] if task != "navigation" else []):
            check_train(compose_train(tmp_path, f"task={task}", f"method={method}", *experiment, fast=False))
        if method == "mumomaml_film":
            cfg = compose_train(tmp_path, f"task={task}", f"method={method}", "experiment=modulated_prior", fast=False)
            check_train(cfg)
            assert cfg.model.algorithm.after_modulation_weight == 1.0
    check_evaluate(compose_other("evaluate", "ckpt_path=x.ckpt"))
    check_bench(compose_other("bench"))


@pytest.mark.parametrize("entry, args, message", [
    ("mumo.train", ["seed=abc"], "error: seed: Value 'abc' of type 'str' could not be converted to Integer"),
    ("mumo.train", ["val_every=0"], "error: val_every: must be >= 1 (got 0)"),
    ("mumo.train", ["inner_lr=-1"], "error: inner_lr: must be > 0 (got -1.0)"),
    ("mumo.train", ["task=navigation", "model.algorithm.after_modulation_weight=-1"],
     "error: model.algorithm.after_modulation_weight: must be >= 0 (got -1.0)"),
    ("mumo.evaluate", ["ckpt_path=x.ckpt", "inner_steps=-1"], "error: inner_steps: must be >= 0 (got -1)"),
    ("mumo.evaluate", [], "error: ckpt_path: Missing mandatory value: ckpt_path"),
    ("mumo.bench", ["rounds=0"], "error: rounds: must be >= 1 (got 0)"),
])
def test_the_command_line_prints_one_line_and_writes_nothing(workdir: Path, entry: str, args: list, message: str):
    proc = run_cli("-m", entry, *(FAST if entry == "mumo.train" else []), *args, "hydra.run.dir=run", cwd=workdir)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [message]
    assert not list((workdir / "run").glob("*.json")) and not (workdir / "run" / "checkpoints").exists()


def test_resolved_table1_config_prints_and_maml_modulates_nothing(workdir: Path):
    for method, layers in (("maml", None), ("multi_maml", None), ("mumomaml_film", [0])):
        proc = run_cli("-m", "mumo.train", "experiment=table1", f"method={method}", "--cfg", "job", "--resolve",
                       cwd=workdir)
        assert proc.returncode == 0, proc.stderr[-2000:]
        cfg = yaml.safe_load(proc.stdout)
        assert cfg["modulation"]["layers"] == cfg["model"]["net"]["modulated_layers"] == layers
