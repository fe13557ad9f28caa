"""results.json: what a run measured, and a short table for the terminal."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from mumo.core.learner import Learner
from mumo.provenance import environment
from mumo.threads import Threads


def build_results(cfg: DictConfig, module: Learner, steps: int, metrics: dict, threads: Threads,
                  provenance: dict, code: dict, **extra: Any) -> dict:
    """The run record (docs/results.md): what ran, where its numbers came from, the test metrics.

    `cfg` is the config that produced the numbers; it is stored whole and resolved, so that any
    two runs can be compared key by key. `provenance` says how: trained, resumed or evaluated;
    `code` is the code version when the run started (`mumo.provenance.code_version`).
    """
    identity = module.describe()
    return {
        **{k: identity[k] for k in ("method", "modulation")},
        "modes": int(cfg.modes),
        **{k: v for k, v in identity.items() if k not in ("method", "modulation")},
        "meta_batch_size": int(cfg.meta_batch_size),
        "seed": int(cfg.seed),
        "steps": int(steps),
        "threads": threads.count,
        "threads_source": threads.source,
        **extra,
        "provenance": provenance,
        "code": code,
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
    """The test metric (query MSE, return) after modulation / adaptation with 95% CIs, overall and
    per mode (and before modulation, where the family measures it)."""
    test, metric = results["test"], results.get("metric", "mse")
    stages = [s for s in ("pre_modulation", "post_modulation", "post_adaptation") if f"{s}_{metric}" in test]
    titles = {"pre_modulation": "before modulation", "post_modulation": "after modulation",
              "post_adaptation": f"after {results['inner_steps']} steps"}
    lines = [
        f"{results['method']} (modulation={results['modulation']}), {results['modes']} modes, "
        f"{results['steps']} meta-iterations, seed {results['seed']}, {test['num_tasks']} test tasks ({metric})",
        f"{'':<12}" + "".join(f"{titles[s]:>24}" for s in stages),
    ]
    for name, m in [("all", test), *test["per_mode"].items()]:
        lines.append(f"{name:<12}" + "".join(f"{m[f'{s}_{metric}']:>15.4f} ± {m[f'{s}_ci95']:<6.4f}" for s in stages))
    return "\n".join(lines)
