"""Benchmark meta-training and evaluation throughput; variants side by side in one process.

    python -m mumo.bench                                  # CPU: 2 modes, none/film, 50/500/5000 tasks
    python -m mumo.bench device=cuda                      # the same on a GPU (fast = CUDA graph)
    python -m mumo.bench variants=[l2l,low_rank] tasks=[50] modulations=[film]
    python -m mumo.bench modulations=[film] tasks=[50] ckpt_path=<a FiLM run>/checkpoints/last.ckpt

One meta-iteration = sample a meta-batch, encode + modulate, 5 second-order inner steps,
meta-backward, per-group clipping and the Adam step. Variants alternate round by round; each
round times several iterations and synchronises once, and the table reports the median over
rounds, tasks/s, and the speed-up against l2l (or the slowest variant). Written to bench.json.
"""

from __future__ import annotations

import platform
import statistics
import time
from pathlib import Path

import hydra
import lightning as L
import torch
from omegaconf import DictConfig

from mumo.checkpoints import load_checkpoint
from mumo.cli import report_errors
from mumo.config import compose_config, instantiate
from mumo.errors import MumoError
from mumo.fast_step import MetaIterationStep
from mumo.results import write_json

VARIANTS = {
    "l2l": ["engine=l2l", "fast_path=false"],
    "dense": ["engine=batched", "fast_weights=dense", "fast_path=false"],
    "low_rank": ["engine=batched", "fast_weights=low_rank", "fast_path=false"],
    "fast": ["engine=batched", "fast_weights=auto", "fast_path=true"],
}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


class MetaIteration:
    """One training step of the configured MetaLearner, outside Lightning's loop."""

    def __init__(self, overrides: list[str], device: torch.device, fast: bool, state_dict: dict | None = None) -> None:
        # No Trainer sizes a schedule here, and an lr schedule costs nothing per step.
        cfg = compose_config("train", [*overrides, "lr_schedule=constant", "paths.output_dir=unused"])
        self.datamodule = instantiate(cfg.data)
        self.module = instantiate(cfg.model, mode_names=self.datamodule.mode_names)
        if state_dict is not None:
            try:
                self.module.load_state_dict(state_dict)
            except RuntimeError:
                raise MumoError(f"ckpt_path: its weights do not fit the model of {' '.join(overrides)}") from None
        self.module.to(device)
        self.batches = iter(self.datamodule.train_stream)
        self.optimizer = self.module.configure_optimizers()
        self.device = device
        self.fast = MetaIterationStep(self.module, self.optimizer, use_graph=device.type == "cuda") if fast else None
        self.step = 0

    def __call__(self) -> None:
        batch = next(self.batches)
        batch = type(batch)(*(f.to(self.device, non_blocking=True) for f in batch))
        if self.fast is not None:
            self.fast(batch, self.step)
        else:
            self.optimizer.zero_grad(set_to_none=True)
            self.module.meta_loss(batch).backward()
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


def _common(cfg: DictConfig, modulation: str, tasks: int) -> list[str]:
    layers = ["modulation.layers=[0]"] if cfg.paper_layers and cfg.modes == 2 and modulation != "none" else []
    return [f"modulation={modulation}", f"modes={cfg.modes}", f"tasks_per_mode={tasks // cfg.modes}",
            f"inner_steps={cfg.inner_steps}", f"first_order={cfg.first_order}", f"seed={cfg.seed}", *layers]


def bench_meta_iterations(cfg: DictConfig, device: torch.device) -> list[dict]:
    state_dict = load_checkpoint(cfg.ckpt_path)["state_dict"] if cfg.ckpt_path else None
    rows = []
    for modulation in cfg.modulations:
        for tasks in cfg.tasks:
            L.seed_everything(cfg.seed, verbose=False)
            names = [v for v in cfg.variants if v != "l2l" or tasks <= cfg.l2l_max_tasks]
            runners = {v: MetaIteration([*_common(cfg, modulation, tasks), *VARIANTS[v]], device, v == "fast", state_dict)
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
        runner = MetaIteration(overrides, device, fast=False)
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


def format_rows(rows: list[dict]) -> str:
    header = f"{'what':<22}{'variant':<9}{'modulation':<11}{'tasks':>6}{'ms':>11}{'tasks/s':>11}  {'speed-up':<18}"
    lines = [header, "-" * len(header)]
    for r in rows:
        speedup = f"{r['speedup']:.1f}x vs {r['speedup_vs']}" if r["speedup_vs"] else ""
        lines.append(f"{r['what']:<22}{r['variant']:<9}{r['modulation']:<11}{r['tasks']:>6}{r['median_ms']:>11.2f}"
                     f"{r['tasks_per_s']:>11.0f}  {speedup:<18}".rstrip())
    return "\n".join(lines)


@hydra.main(version_base="1.3", config_path="../conf", config_name="bench")
@report_errors
def main(cfg: DictConfig) -> None:
    device = torch.device(cfg.device)
    rows = bench_meta_iterations(cfg, device)
    if cfg.entry_point_steps:
        rows += bench_entry_point(cfg, device)
    if cfg.eval_tasks_per_mode:
        rows += bench_evaluation(cfg, device)
    machine = {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
               "torch": torch.__version__, "device": str(device), "date": time.strftime("%Y-%m-%d")}
    if device.type == "cuda":
        machine["gpu"] = torch.cuda.get_device_name()
    print(f"{cfg.modes} modes, {cfg.inner_steps} inner steps, {'first' if cfg.first_order else 'second'} order; "
          f"{machine}")
    print(format_rows(rows))
    write_json(Path(cfg.paths.output_dir) / "bench.json", {"machine": machine, "rows": rows})


if __name__ == "__main__":
    main()
