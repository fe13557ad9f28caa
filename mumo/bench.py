"""Benchmark meta-training and evaluation throughput; variants side by side in one process.

    python -m mumo.bench                                  # CPU: 2 modes, none/film, 50/500/5000 tasks
    python -m mumo.bench device=cuda                      # the same on a GPU (graph = CUDA graph)
    python -m mumo.bench variants=[l2l,low_rank] tasks=[50] modulations=[film]
    python -m mumo.bench modulations=[film] tasks=[50] ckpt_path=<a FiLM run>/checkpoints/last.ckpt
    python -m mumo.bench variants=[low_rank] tasks=[50] entry_point_steps=0 eval_tasks_per_mode=0  # + load rows
    python -m mumo.bench variants=[low_rank] tasks=[50] entry_point_steps=0 eval_tasks_per_mode=0 load_tasks=0  # + RL

One meta-iteration = sample a meta-batch, encode + modulate, 5 second-order inner steps,
meta-backward, per-group clipping and the Adam step. Variants alternate round by round; each
round times several iterations and synchronises once, and the table reports the median over
rounds, tasks/s, and the speed-up against l2l (or the slowest variant). The load rows time the
default training path idle and beside a busy CPU-bound process, at the thread count the run uses
(threads=auto) and at torch's all-cores default. The RL rows time a meta-RL iteration on 2-D
navigation at the paper's settings, split into sampling and update. The classification rows
time the batched engine against learn2learn, with each one's FLOPs, in float32 and, with
classification_precisions, bf16-mixed; a bound row gives the fastest the batched engine's
arithmetic could run at the device's float32 matmul rate; a last row times
the sampling of one meta-batch from the packed images (done in the training process, before each
step) as a share of a meta-iteration.
Written to bench.json.
"""

from __future__ import annotations

import contextlib
import platform
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import hydra
import lightning as L
import torch
from omegaconf import DictConfig
from torch.utils.flop_counter import FlopCounterMode

from mumo.checkpoints import check_weights_fit, load_checkpoint
from mumo.cli import report_errors
from mumo.config import compose_config, instantiate
from mumo.errors import output_directory
from mumo.core.graph_step import GraphedMetaStep
from mumo.results import write_json
from mumo.schema import check_bench
from mumo.threads import check_device, setup_threads, usable_cpus

VARIANTS = {
    "l2l": ["engine=l2l", "graph_step=false"],
    "dense": ["engine=batched", "weight_updates=dense", "graph_step=false"],
    "low_rank": ["engine=batched", "weight_updates=low_rank", "graph_step=false"],
    "graph": ["engine=batched", "weight_updates=auto", "graph_step=true"],
}
MATMUL_SIZE = 1024  # the square product whose rate bounds the classification engines
MIN_CHEAP_CALLS = 5  # cheap calls (a matmul, a meta-batch draw) are timed at least this often


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


class MetaIteration:
    """One training step of the configured meta-learner, outside Lightning's loop."""

    def __init__(self, overrides: list[str], device: torch.device, graph: bool, state_dict: dict | None = None) -> None:
        # No Trainer sizes a schedule here, and an lr schedule costs nothing per step.
        cfg = compose_config("train", [*overrides, "lr_schedule=constant", "paths.output_dir=unused"])
        self.datamodule = instantiate(cfg.data)
        self.module = instantiate(cfg.model, **self.datamodule.learner_inputs())
        if state_dict is not None:
            check_weights_fit(self.module, state_dict, " ".join(overrides))
            self.module.load_state_dict(state_dict)
        self.module.to(device)
        self.batches = iter(self.datamodule.train_stream)
        self.tasks = int(cfg.meta_batch_size)  # per meta-iteration
        self.precision = cfg.trainer.get("precision")
        self.optimizer = self.module.configure_optimizers()
        self.device = device
        self.graph = GraphedMetaStep(self.module, self.optimizer, use_graph=device.type == "cuda") if graph else None
        self.step = 0

    def __call__(self) -> None:
        batch = next(self.batches)
        batch = type(batch)(*(f.to(self.device, non_blocking=True) for f in batch))
        if self.graph is not None:
            self.graph(batch, self.step)
        else:
            self.optimizer.zero_grad(set_to_none=True)
            with autocast(self.precision, self.device):
                loss = self.module.meta_loss(batch)
            loss.backward()
            self.module.clip_gradients_by_group(self.optimizer)
        self.optimizer.step()
        self.step += 1

    def time(self, iterations: int) -> float:
        """Seconds per iteration over `iterations` iterations (one device synchronisation)."""
        sync(self.device)
        started = time.perf_counter()
        for _ in range(iterations):
            self()
        sync(self.device)
        return (time.perf_counter() - started) / iterations


def autocast(precision: str | None, device: torch.device) -> contextlib.AbstractContextManager:
    """The autocast context that Lightning's `precision` setting enters around a training step."""
    if precision == "bf16-mixed":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _common(cfg: DictConfig, modulation: str, tasks: int, paper_layers: bool | None = None) -> list[str]:
    paper_layers = cfg.paper_layers if paper_layers is None else paper_layers
    layers = ["modulation.layers=[0]"] if paper_layers and cfg.modes == 2 and modulation != "none" else []
    return [f"modulation={modulation}", f"modes={cfg.modes}", f"tasks_per_mode={tasks // cfg.modes}",
            f"inner_steps={cfg.inner_steps}", f"first_order={cfg.first_order}", f"seed={cfg.seed}", *layers]


def bench_meta_iterations(cfg: DictConfig, device: torch.device) -> list[dict]:
    state_dict = load_checkpoint(cfg.ckpt_path)["state_dict"] if cfg.ckpt_path else None
    rows = []
    for modulation in cfg.modulations:
        for tasks in cfg.tasks:
            L.seed_everything(cfg.seed, verbose=False)
            names = [v for v in cfg.variants if v != "l2l" or tasks <= cfg.l2l_max_tasks]
            runners = {v: MetaIteration([*_common(cfg, modulation, tasks), *VARIANTS[v]], device, v == "graph",
                                        state_dict)
                       for v in names}
            iterations = {}
            for v, runner in runners.items():
                runner.time(cfg.warmup)
                iterations[v] = max(1, round(cfg.round_seconds / runner.time(1)))
            times: dict[str, list[float]] = {v: [] for v in names}
            for _ in range(cfg.rounds):
                for v, runner in runners.items():
                    times[v].append(runner.time(iterations[v]))
            group = []
            for v in names:
                ms = 1000 * statistics.median(times[v])
                group.append({"what": "meta-iteration", "variant": v, "modulation": modulation, "tasks": tasks,
                              "median_ms": ms, "tasks_per_s": tasks / ms * 1000,
                              "iterations": iterations[v] * cfg.rounds})
            reference = next((r for r in group if r["variant"] == "l2l"), max(group, key=lambda r: r["median_ms"]))
            for r in group:
                r["speedup"] = reference["median_ms"] / r["median_ms"]
                r["speedup_vs"] = reference["variant"]
            rows += group
    return rows


@contextlib.contextmanager
def busy_process() -> Iterator[Callable[[bool], None]]:
    """A CPU-bound process beside the bench; the yielded switch runs (True) or pauses (False) it."""
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        yield lambda busy: proc.send_signal(signal.SIGCONT if busy else signal.SIGSTOP)
    finally:
        proc.kill()
        proc.wait()


def bench_under_load(cfg: DictConfig, device: torch.device) -> list[dict]:
    """The default training path idle and beside one busy process, at threads=auto and all cores."""
    chosen = torch.get_num_threads()
    settings = {f"threads={chosen} ({cfg.threads})": chosen, f"threads={usable_cpus()} (all)": usable_cpus()}
    L.seed_everything(cfg.seed, verbose=False)
    default_path = [*_common(cfg, cfg.load_modulation, cfg.load_tasks, paper_layers=False), "engine=batched",
                    "weight_updates=auto"]  # as `python -m mumo.train modulation=...`: every layer modulated
    state_dict = load_checkpoint(cfg.ckpt_path)["state_dict"] if cfg.ckpt_path else None
    runner = MetaIteration(default_path, device, graph=device.type == "cuda", state_dict=state_dict)
    times: dict[tuple[str, str], list[float]] = {}
    try:
        with busy_process() as run_busy:
            loads = {"idle": False, "1 busy process": True}
            iterations = {}
            for load, busy in loads.items():  # calibrate each pair: loaded 2-thread steps can take seconds
                run_busy(busy)
                for name, threads in settings.items():
                    torch.set_num_threads(threads)
                    runner.time(cfg.warmup)
                    iterations[load, name] = max(1, round(cfg.round_seconds / runner.time(1)))
            for _ in range(cfg.rounds):
                for load, busy in loads.items():
                    run_busy(busy)
                    for name, threads in settings.items():
                        torch.set_num_threads(threads)
                        times.setdefault((load, name), []).append(runner.time(iterations[load, name]))
    finally:
        torch.set_num_threads(chosen)
    rows = []
    for (load, name), samples in times.items():
        ms = 1000 * statistics.median(samples)
        rows.append({"what": f"meta-iteration, {load}", "variant": name, "modulation": cfg.load_modulation,
                     "tasks": cfg.load_tasks, "median_ms": ms, "tasks_per_s": cfg.load_tasks / ms * 1000,
                     "iterations": iterations[load, name] * cfg.rounds, "threads": settings[name]})
    idle = {r["variant"]: r["median_ms"] for r in rows if r["what"].endswith("idle")}
    for r in rows:
        r["speedup"], r["speedup_vs"] = idle[r["variant"]] / r["median_ms"], "idle"
    return rows


def bench_entry_point(cfg: DictConfig, device: torch.device) -> list[dict]:
    """ms per meta-iteration through the real training entry point (Lightning loop included)."""
    from mumo.train import run

    rows = []
    trainer = "gpu" if device.type == "cuda" else "cpu"
    for modulation in cfg.modulations:
        for variant in (v for v in cfg.variants if v != "l2l"):
            overrides = [*_common(cfg, modulation, 25 * cfg.modes), *VARIANTS[variant], f"trainer={trainer}",
                         f"trainer.max_steps={cfg.entry_point_steps}", f"val_every={cfg.entry_point_steps + 1}",
                         "data.test_tasks_per_mode=10", "logger=none", "callbacks.progress_bar.refresh_rate=0",
                         f"paths.output_dir={cfg.paths.output_dir}/entry_{modulation}_{variant}"]
            results = run(compose_config("train", overrides))
            ms = 1000 * results["train_seconds"] / results["steps"]
            rows.append({"what": "python -m mumo.train", "variant": variant, "modulation": modulation,
                         "tasks": 25 * cfg.modes, "median_ms": ms, "tasks_per_s": 25 * cfg.modes / ms * 1000,
                         "iterations": results["steps"], "speedup": float("nan"), "speedup_vs": "",
                         "note": "mean over the run, validation and start-up included"})
    return rows


def bench_evaluation(cfg: DictConfig, device: torch.device) -> list[dict]:
    """Test tasks per second: adaptation + query MSE after every inner step (no second order)."""
    rows = []
    for modulation in cfg.modulations:
        overrides = [*_common(cfg, modulation, 50), f"data.test_tasks_per_mode={cfg.eval_tasks_per_mode}"]
        runner = MetaIteration(overrides, device, graph=False)
        batches = [type(b)(*(f.to(device) for f in b)) for b in runner.datamodule.test_dataloader()]
        runner.module.evaluate(batches[0])  # warm-up
        sync(device)
        started = time.perf_counter()
        for batch in batches:
            runner.module.evaluate(batch)
        sync(device)
        seconds = time.perf_counter() - started
        tasks = sum(b.num_tasks for b in batches)
        rows.append({"what": "evaluation", "variant": "batched", "modulation": modulation, "tasks": tasks,
                     "median_ms": 1000 * seconds, "tasks_per_s": tasks / seconds, "iterations": 1,
                     "speedup": float("nan"), "speedup_vs": ""})
    return rows


def bench_rl(cfg: DictConfig) -> list[dict]:
    """Meta-RL at each of `rl_tasks`' settings (`task=<name>` plus `rl_overrides`): one
    meta-iteration split into sampling (K + 1 stages of rollouts with the adaptation between them,
    advantages included) and the update (the ProMP steps), medians over `rl_rounds`; and, within
    sampling, the simulation alone (the batched simulator stepped with random actions for the
    same number of environment steps)."""
    from mumo.rl.promp import sample_stages

    rows = []
    for task in cfg.rl_tasks:
        for modulation in cfg.rl_modulations:
            L.seed_everything(cfg.seed, verbose=False)
            train_cfg = compose_config("train", [f"task={task}", f"modulation={modulation}", f"seed={cfg.seed}",
                                                 "paths.output_dir=unused", *cfg.rl_overrides])
            datamodule = instantiate(train_cfg.data)
            module = instantiate(train_cfg.model, **datamodule.learner_inputs())
            optimizer = torch.optim.Adam(module.parameters(), lr=module.lr)
            stream, generator = iter(datamodule.train_stream), torch.Generator().manual_seed(cfg.seed)
            sampling, update, simulation = [], [], []
            for _ in range(cfg.rl_rounds + 1):  # the first round warms up
                batch = next(stream)
                started = time.perf_counter()
                stages = sample_stages(module.algorithm, module.policy, module.env, batch, module.rollouts,
                                       module.horizon, module.policy_scale, generator)
                sampled = time.perf_counter()
                for _ in range(module.promp_steps):
                    optimizer.zero_grad(set_to_none=True)
                    module.algorithm.meta_loss(module.policy, stages.batches).backward()
                    optimizer.step()
                sampling.append(sampled - started), update.append(time.perf_counter() - sampled)
                simulation.append(time_simulation(module.env, batch.params.repeat_interleave(module.rollouts, 0),
                                                  module.horizon * len(stages.batches), generator))
            tasks = batch.num_tasks
            env_steps = tasks * module.rollouts * module.horizon * len(stages.batches)
            splits = (("sampling", sampling), ("of which simulation", simulation), ("update", update),
                      ("total", [a + b for a, b in zip(sampling, update)]))
            for what, samples in splits:
                ms = 1000 * statistics.median(samples[1:])
                rows.append({"what": f"RL {task}, {what}", "variant": f"{module.promp_steps} ProMP steps",
                             "modulation": modulation, "tasks": tasks, "median_ms": ms,
                             "tasks_per_s": tasks / ms * 1000, "iterations": cfg.rl_rounds, "speedup": float("nan"),
                             "speedup_vs": "", "note": f"{env_steps} environment steps per meta-iteration"})
    return rows


def time_simulation(env, params: torch.Tensor, steps: int, generator: torch.Generator) -> float:
    """Seconds for `steps` steps of the batched simulator of `env` (random actions, one reset)."""
    sim = env.batched(params, threads=torch.get_num_threads())
    actions = (2 * torch.rand(steps, len(params), env.action_size, generator=generator) - 1) * env.action_limit
    started = time.perf_counter()
    sim.reset(generator)
    for action in actions:
        sim.step(action)
    return time.perf_counter() - started


def bench_vector_env(cfg: DictConfig) -> list[dict]:
    """Environment steps per second of each `vector_envs` id's batched simulator against
    gymnasium's synchronous vector env of the same environment, side by side, `vector_envs_n`
    environments, random actions, medians over `rl_rounds`."""
    import gymnasium as gym

    rows = []
    for task in cfg.vector_envs:
        env = instantiate(compose_config("train", [f"task={task}", "paths.output_dir=unused"]).data.env)
        n, steps = cfg.vector_envs_n, cfg.vector_env_steps
        generator = torch.Generator().manual_seed(cfg.seed)
        params = env.tasks.sample(n // env.tasks.modes, generator).params
        vector = gym.make_vec(env.gym_id, num_envs=len(params), vectorization_mode="sync")
        vector.reset(seed=cfg.seed)
        actions = (2 * torch.rand(steps, len(params), env.action_size, generator=generator) - 1) * env.action_limit
        batched, gymnasium = [], []
        for _ in range(cfg.rl_rounds + 1):
            batched.append(time_simulation(env, params, steps, generator))
            started = time.perf_counter()
            for action in actions.double().numpy():
                vector.step(action)
            gymnasium.append(time.perf_counter() - started)
        vector.close()
        per_s = {name: len(params) * steps / statistics.median(t[1:])
                 for name, t in (("batched", batched), ("gymnasium sync vector env", gymnasium))}
        for name, rate in per_s.items():
            rows.append({"what": f"env steps/s, {task}", "variant": name, "modulation": "", "tasks": len(params),
                         "median_ms": 1000 * len(params) / rate, "tasks_per_s": rate,
                         "iterations": cfg.rl_rounds,
                         "speedup": rate / per_s["gymnasium sync vector env"] if name == "batched" else float("nan"),
                         "speedup_vs": "gymnasium sync vector env" if name == "batched" else "",
                         "note": f"{rate:.0f} env steps/s ({torch.get_num_threads()} threads)"})
    return rows


def bench_classification(cfg: DictConfig, device: torch.device) -> list[dict]:
    """Classification meta-iterations at `task=classification`'s settings (plus
    `classification_overrides`), the batched engine against learn2learn's clone/adapt at each of
    `classification_precisions`, all rounds alternating so that machine noise hits every variant
    alike; medians. Each row counts its FLOPs, and at float32 a bound row says how fast the batched
    engine's arithmetic could run at the device's matmul rate. Then the sampling of one meta-batch
    from the packed images, which the training loop waits for before each step."""
    rows = []
    peak = matmul_flops_per_second(device, cfg.classification_rounds)
    variants = [(engine, precision) for precision in cfg.classification_precisions for engine in ("l2l", "batched")]
    for modulation in cfg.classification_modulations:
        L.seed_everything(cfg.seed, verbose=False)
        common = ["task=classification", f"modulation={modulation}", f"seed={cfg.seed}", "graph_step=false",
                  *cfg.classification_overrides]
        runners = {(e, p): MetaIteration([*common, f"engine={e}", f"trainer.precision={p}"], device, graph=False)
                   for e, p in variants}
        times = {v: [] for v in runners}
        for round_ in range(cfg.classification_rounds + 1):  # the first round warms up
            for variant, runner in runners.items():
                seconds = runner.time(1)
                if round_:
                    times[variant].append(seconds)
        timed = {}
        for (engine, precision), runner in runners.items():
            label = "" if precision == "32-true" else f" {precision}"
            seconds, flops = statistics.median(times[engine, precision]), count_flops(runner)
            timed[engine, precision] = {
                "what": "classification meta-iteration", "variant": engine + label, "modulation": modulation,
                "tasks": runner.tasks, "median_ms": 1000 * seconds, "tasks_per_s": runner.tasks / seconds,
                "iterations": cfg.classification_rounds, "gflop": flops / 1e9,
                "speedup": statistics.median(times["l2l", precision]) / seconds, "speedup_vs": "l2l" + label,
                "note": f"{flops / 1e9:.1f} GFLOP at {flops / seconds / 1e9:.1f} GFLOP/s"}
            rows.append(timed[engine, precision])
            if engine == "batched" and precision == "32-true":
                rows.append(arithmetic_bound(flops, peak, timed["l2l", precision]))
    if rows:
        first = cfg.classification_precisions[0]
        rows.append(time_episode_sampling(runners["batched", first].batches, cfg.classification_rounds,
                                          timed["batched", first]))
    return rows


def count_flops(runner: MetaIteration) -> float:
    """Floating-point operations of one meta-iteration of `runner` (torch's FLOP counter: matmuls
    and convolutions, forward and every backward, the second-order ones included)."""
    counter = FlopCounterMode(display=False)
    with counter:
        runner()
    return float(counter.get_total_flops())


def median_seconds(call: Callable[[], object], calls: int, device: torch.device) -> float:
    """Median seconds of `call` over `calls` timed calls after one warm-up, each synchronised
    with `device`."""
    times = []
    for _ in range(calls + 1):
        sync(device)
        started = time.perf_counter()
        call()
        sync(device)
        times.append(time.perf_counter() - started)
    return statistics.median(times[1:])


def matmul_flops_per_second(device: torch.device, rounds: int) -> float:
    """The device's float32 matmul rate at the bench's threads: a square MATMUL_SIZE x MATMUL_SIZE
    product's median time over at least MIN_CHEAP_CALLS calls, about the best rate any engine's
    arithmetic gets."""
    a, b = (torch.randn(MATMUL_SIZE, MATMUL_SIZE, device=device) for _ in range(2))
    return 2 * MATMUL_SIZE**3 / median_seconds(lambda: a @ b, max(rounds, MIN_CHEAP_CALLS), device)


def arithmetic_bound(flops: float, peak: float, l2l: dict) -> dict:
    """The fastest a meta-iteration of `flops` can run at the matmul rate `peak` (computed, not
    timed), and so the largest speed-up over `l2l` (its timed row) that any engine doing the same
    arithmetic can reach."""
    seconds = flops / peak
    return {"what": "classification arithmetic bound", "variant": "at matmul peak", "modulation": l2l["modulation"],
            "tasks": l2l["tasks"], "median_ms": 1000 * seconds, "tasks_per_s": l2l["tasks"] / seconds,
            "iterations": 0, "speedup": l2l["median_ms"] / 1000 / seconds, "speedup_vs": "l2l",
            "note": f"{flops / 1e9:.1f} GFLOP (batched) at {peak / 1e9:.1f} GFLOP/s "
                    f"({MATMUL_SIZE}x{MATMUL_SIZE} float32 matmul)"}


def time_episode_sampling(batches: Iterator, rounds: int, iteration: dict) -> dict:
    """Median time to draw one meta-batch from `batches` (a training stream, as the training loop
    draws it) and its share of `iteration` (a batched meta-iteration row, which includes one draw).
    Draws happen on the CPU, before the batch moves to the device."""
    calls = max(rounds, MIN_CHEAP_CALLS)
    seconds = median_seconds(lambda: next(batches), calls, torch.device("cpu"))
    tasks = iteration["tasks"]
    return {"what": "classification meta-batch sampling", "variant": "in-process", "modulation": "-",
            "tasks": tasks, "median_ms": 1000 * seconds, "tasks_per_s": tasks / seconds,
            "iterations": calls, "speedup": float("nan"), "speedup_vs": "",
            "note": f"{1000 * seconds / iteration['median_ms']:.1%} of a batched {iteration['modulation']} "
                    "meta-iteration"}


def format_rows(rows: list[dict]) -> str:
    header = (f"{'what':<36}{'variant':<20}{'modulation':<11}{'tasks':>6}{'ms':>11}{'tasks/s':>11}"
              f"  {'speed-up':<18}")
    lines = [header, "-" * len(header)]
    for r in rows:
        speedup = f"{r['speedup']:.2f}x vs {r['speedup_vs']}" if r["speedup_vs"] else ""
        lines.append(f"{r['what']:<36}{r['variant']:<20}{r['modulation']:<11}{r['tasks']:>6}{r['median_ms']:>11.2f}"
                     f"{r['tasks_per_s']:>11.0f}  {speedup:<18}  {r.get('note', '')}".rstrip())
    return "\n".join(lines)


@hydra.main(version_base="1.3", config_path="../conf", config_name="bench")
@report_errors
def main(cfg: DictConfig) -> None:
    check_bench(cfg)
    check_device(cfg.device, "device")
    setup_threads(cfg.threads, "mumo.regression.data.RegressionDataModule", cfg.device)
    out = output_directory(cfg.paths.output_dir, "paths.output_dir")  # before minutes of measuring, not after
    device = torch.device(cfg.device)
    rows = bench_meta_iterations(cfg, device)
    if cfg.load_tasks:
        rows += bench_under_load(cfg, device)
    if cfg.entry_point_steps:
        rows += bench_entry_point(cfg, device)
    if cfg.eval_tasks_per_mode:
        rows += bench_evaluation(cfg, device)
    if cfg.rl_modulations and cfg.rl_tasks:
        rows += bench_rl(cfg)
    if cfg.vector_envs:
        rows += bench_vector_env(cfg)
    if cfg.classification_modulations:
        rows += bench_classification(cfg, device)
    machine = {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
               "torch": torch.__version__, "device": str(device), "date": time.strftime("%Y-%m-%d")}
    if device.type == "cuda":
        machine["gpu"] = torch.cuda.get_device_name()
    print(f"{cfg.modes} modes, {cfg.inner_steps} inner steps, {'first' if cfg.first_order else 'second'} order; "
          f"{machine}")
    print(format_rows(rows))
    write_json(out / "bench.json", {"machine": machine, "rows": rows})


if __name__ == "__main__":
    main()
