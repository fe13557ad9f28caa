"""results.json: what a run measured, and a short table for the terminal."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from mumo.module import MetaLearner
from mumo.provenance import code_version, environment
from mumo.threads import Threads


def build_results(cfg: DictConfig, module: MetaLearner, steps: int, metrics: dict, threads: Threads,
                  provenance: dict, **extra: Any) -> dict:
    """The run record (docs/results.md): what ran, where its numbers came from, the test metrics.

    `cfg` is the config that produced the numbers; it is stored whole and resolved, so that any
    two runs can be compared key by key. `provenance` says how: trained, resumed or evaluated.
    """
    model = module.model
    return {
        "method": model.method,
        "modulation": model.modulation,
        "modes": int(cfg.modes),
        "mode_names": list(module.mode_names),
        "inner_steps": module.inner_loop.steps,
        "inner_lr": module.inner_loop.lr,
        "first_order": module.inner_loop.first_order,
        "meta_lr": module.lr,
        "lr_schedule": module.lr_schedule,
        "engine": module.engine.name,
        "meta_batch_size": int(cfg.meta_batch_size),
        "seed": int(cfg.seed),
        "steps": int(steps),
        "threads": threads.count,
        "threads_source": threads.source,
        **extra,
        "provenance": provenance,
        "code": code_version(),
        "environment": environment(cfg.trainer.accelerator),
        "config": OmegaConf.to_container(cfg, resolve=True),
        "history": module.history,
        "test": metrics,
    }


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json(path: Path, obj: Any) -> None:
    """Write atomically: a crash never leaves a half-written file in place of a good one."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes it private (0600); results are meant to be shared
    with os.fdopen(fd, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


def format_table(results: dict) -> str:
    """Query MSE after modulation / adaptation with 95% CIs, overall and per mode."""
    test = results["test"]
    lines = [
        f"{results['method']} (modulation={results['modulation']}), {results['modes']} modes, "
        f"{results['steps']} meta-iterations, seed {results['seed']}, {test['num_tasks']} test tasks",
        f"{'':<12}{'after modulation':>22}{'after ' + str(results['inner_steps']) + ' steps':>22}",
    ]
    rows = [("all", test), *test["per_mode"].items()]
    for name, m in rows:
        lines.append(
            f"{name:<12}{m['post_modulation_mse']:>13.4f} ± {m['post_modulation_ci95']:<6.4f}"
            f"{m['post_adaptation_mse']:>13.4f} ± {m['post_adaptation_ci95']:<6.4f}"
        )
    return "\n".join(lines)
