"""How many CPU threads torch uses for intra-op work, chosen before any torch work starts.

torch uses every core by default. The meta-learning workloads here are thousands of small ops
per meta-iteration, and at every one of them OpenMP waits for all its threads: with another
CPU-bound process on a 2-core machine, a 2-thread FiLM meta-iteration went from ~51 ms to
~2,400 ms, a 1-thread one stayed at ~59 ms (docs/benchmarks.md, "Threads on a shared machine"). So `threads=auto` takes the
count that measured fastest for the task family on its device, and never more than the CPUs this
process may use. In order of precedence:

1. `threads=N` (an explicit number);
2. the user's `OMP_NUM_THREADS`;
3. `auto`: the family's measured default for the device (`default_threads` on its data module),
   capped at the usable CPUs; where the family declares none, the usable CPUs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

import torch

from mumo.errors import ConfigError


def usable_cpus(environ: Mapping[str, str] | None = None) -> int:
    """CPUs this process may run on: its affinity mask, and SLURM's allocation where it is smaller."""
    environ = os.environ if environ is None else environ
    count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    slurm = environ.get("SLURM_CPUS_PER_TASK", "")
    if slurm.isdigit() and int(slurm) > 0:
        count = min(count, int(slurm))
    return max(1, count)


@dataclass(frozen=True)
class Threads:
    """The intra-op thread count and why it was chosen (recorded in results.json)."""

    count: int
    source: str  # "threads", "OMP_NUM_THREADS" or "auto"

    def apply(self) -> Threads:
        torch.set_num_threads(self.count)
        return self


def choose_threads(
    setting: int | str, family_defaults: Mapping[str, int], device: str, environ: Mapping[str, str] | None = None
) -> Threads:
    """The thread count for `setting` ('auto' or a positive number) on `device` ('cpu' / 'cuda')."""
    environ = os.environ if environ is None else environ
    if setting != "auto":
        return Threads(int(setting), "threads")
    omp = environ.get("OMP_NUM_THREADS", "")
    if omp.isdigit() and int(omp) > 0:
        return Threads(int(omp), "OMP_NUM_THREADS")
    cpus = usable_cpus(environ)
    return Threads(min(family_defaults.get(device, cpus), cpus), "auto")


def family_threads(data_target: str) -> Mapping[str, int]:
    """The measured thread counts a task family declares on its data module, by device."""
    from hydra.utils import get_class

    return getattr(get_class(data_target), "default_threads", {})


def setup_threads(setting: int | str, data_target: str, accelerator: str) -> Threads:
    """Choose and apply the thread count of a run of the family `data_target` on `accelerator`."""
    return choose_threads(setting, family_threads(data_target), device_of(accelerator)).apply()


def device_of(accelerator: str) -> str:
    """'cuda' or 'cpu' for a Lightning accelerator name or a torch device string."""
    if accelerator == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return "cuda" if accelerator in ("gpu", "cuda") or accelerator.startswith("cuda:") else "cpu"


def check_device(accelerator: str, key: str) -> None:
    """One line naming `key` where it asks for a GPU that torch cannot see (before any work starts)."""
    if accelerator != "auto" and device_of(accelerator) == "cuda" and not torch.cuda.is_available():
        raise ConfigError(key, f"{accelerator} needs a CUDA GPU, and torch {torch.__version__} sees none "
                               "(use cpu or auto)")
