"""Benchmark one meta-iteration (sample, adapt, meta-backward, clip, Adam) per engine.

    python -m mumo.bench                                   # paper config: 2 modes, 50 tasks, FiLM
    python -m mumo.bench modulations=[none,film] tasks=[50,500]

Engines alternate round by round in one process; the table reports medians and the speed-up
against the slowest engine. Also written to bench.json in the run directory.
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

from mumo.cli import report_errors
from mumo.config import compose_config, instantiate
from mumo.results import write_json


class MetaIteration:
    """One training step of the configured MetaLearner, outside Lightning's loop."""

    def __init__(self, overrides: list[str], device: torch.device) -> None:
        cfg = compose_config("train", [*overrides, "paths.output_dir=unused"])
        datamodule = instantiate(cfg.data)
        self.module = instantiate(cfg.model, mode_names=datamodule.mode_names).to(device)
        self.batches = iter(datamodule.train_stream)
        self.optimizer = self.module.configure_optimizers()
        self.device = device

    def __call__(self) -> float:
        """Seconds for one meta-iteration, data sampling included."""
        started = time.perf_counter()
        batch = next(self.batches)
        batch = type(batch)(*(f.to(self.device, non_blocking=True) for f in batch))
        self.optimizer.zero_grad(set_to_none=True)
        self.module.training_step(batch, 0).backward()
        self.module.configure_gradient_clipping(self.optimizer)
        self.optimizer.step()
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - started


def bench(cfg: DictConfig) -> list[dict]:
    device = torch.device(cfg.device)
    rows = []
    for modulation in cfg.modulations:
        for tasks in cfg.tasks:
            L.seed_everything(cfg.seed, verbose=False)
            common = [f"modulation={modulation}", f"modes={cfg.modes}", f"tasks_per_mode={tasks // cfg.modes}",
                      f"inner_steps={cfg.inner_steps}", f"first_order={cfg.first_order}"]
            runners = {e: MetaIteration([*common, f"engine={e}"], device) for e in cfg.engines}
            times: dict[str, list[float]] = {e: [] for e in cfg.engines}
            for e, step in runners.items():
                for _ in range(cfg.warmup):
                    step()
            for _ in range(cfg.rounds):
                for e, step in runners.items():
                    times[e].extend(step() for _ in range(cfg.iters_per_round[e]))
            for e in cfg.engines:
                ms = 1000 * statistics.median(times[e])
                rows.append({"engine": e, "modulation": modulation, "tasks": tasks, "median_ms": ms,
                             "tasks_per_s": tasks / ms * 1000, "iterations": len(times[e])})
            slowest = max(r["median_ms"] for r in rows[-len(cfg.engines):])
            for r in rows[-len(cfg.engines):]:
                r["speedup_vs_slowest"] = slowest / r["median_ms"]
    return rows


def format_rows(rows: list[dict]) -> str:
    header = f"{'engine':<10}{'modulation':<12}{'tasks':>7}{'median ms':>12}{'tasks/s':>11}{'speed-up':>10}"
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(f"{r['engine']:<10}{r['modulation']:<12}{r['tasks']:>7}{r['median_ms']:>12.1f}"
                     f"{r['tasks_per_s']:>11.0f}{r['speedup_vs_slowest']:>9.1f}x")
    return "\n".join(lines)


@hydra.main(version_base="1.3", config_path="../conf", config_name="bench")
@report_errors
def main(cfg: DictConfig) -> None:
    rows = bench(cfg)
    machine = {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
               "torch": torch.__version__, "device": str(cfg.device)}
    if cfg.device.startswith("cuda"):
        machine["gpu"] = torch.cuda.get_device_name()
    print(f"one meta-iteration: {cfg.modes} modes, {cfg.inner_steps} inner steps, "
          f"{'first' if cfg.first_order else 'second'} order; {machine}")
    print(format_rows(rows))
    write_json(Path(cfg.paths.output_dir) / "bench.json", {"machine": machine, "rows": rows})


if __name__ == "__main__":
    main()
