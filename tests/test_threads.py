"""threads=auto|N: the count chosen (explicit > OMP_NUM_THREADS > the family's measured default, capped
at the usable CPUs and SLURM's allocation), applied before training, and recorded in results.json."""

import json
import os
from pathlib import Path

import pytest
import torch
from helpers import FAST, compose_train, run_cli

from mumo.errors import ConfigError
from mumo.threads import Threads, check_device, choose_threads, device_of, usable_cpus
from mumo.train import run

AFFINITY = len(os.sched_getaffinity(0))


@pytest.fixture(autouse=True)
def restore_torch_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_usable_cpus_honours_the_affinity_mask_and_slurm_allocation():
    assert usable_cpus({}) == AFFINITY
    assert usable_cpus({"SLURM_CPUS_PER_TASK": "1"}) == 1
    assert usable_cpus({"SLURM_CPUS_PER_TASK": str(AFFINITY + 7)}) == AFFINITY  # never more than the mask
    assert usable_cpus({"SLURM_CPUS_PER_TASK": ""}) == AFFINITY


@pytest.mark.parametrize(
    "setting, defaults, device, environ, expected",
    [
        ("auto", {"cpu": 1}, "cpu", {}, Threads(1, "auto")),
        ("auto", {"cpu": 64}, "cpu", {}, Threads(AFFINITY, "auto")),  # capped at the usable CPUs
        ("auto", {"cpu": 64}, "cpu", {"SLURM_CPUS_PER_TASK": "1"}, Threads(1, "auto")),
        ("auto", {"cpu": 1}, "cuda", {}, Threads(AFFINITY, "auto")),  # nothing measured for the device: all usable
        ("auto", {}, "cpu", {"SLURM_CPUS_PER_TASK": "1"}, Threads(1, "auto")),
        ("auto", {"cpu": 1}, "cpu", {"OMP_NUM_THREADS": "3"}, Threads(3, "OMP_NUM_THREADS")),  # the user's wins
        (4, {"cpu": 1}, "cpu", {"OMP_NUM_THREADS": "3", "SLURM_CPUS_PER_TASK": "1"}, Threads(4, "threads")),
    ],
)
def test_choice_of_thread_count(setting, defaults, device, environ, expected):
    assert choose_threads(setting, defaults, device, environ) == expected


def test_device_names():
    assert [device_of(a) for a in ("cpu", "gpu", "cuda", "cuda:1")] == ["cpu", "cuda", "cuda", "cuda"]


@pytest.mark.parametrize("threads, expected", [("auto", Threads(1, "auto")), ("2", Threads(2, "threads"))])
def test_training_applies_the_setting_and_records_it(tmp_path: Path, monkeypatch, threads, expected):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    torch.set_num_threads(AFFINITY + 1)
    results = run(compose_train(tmp_path, f"threads={threads}", "logger=none"))
    assert torch.get_num_threads() == expected.count
    assert (results["threads"], results["threads_source"]) == (expected.count, expected.source)


def test_the_command_line_honours_an_explicit_value_and_omp_num_threads(workdir: Path, monkeypatch):
    cases = {"explicit": ({"SLURM_CPUS_PER_TASK": "1", "OMP_NUM_THREADS": "1"}, ["threads=2"], (2, "threads")),
             "omp": ({"OMP_NUM_THREADS": "2"}, ["threads=auto"], (2, "OMP_NUM_THREADS"))}
    for name, (env, args, expected) in cases.items():
        with monkeypatch.context() as m:
            m.delenv("OMP_NUM_THREADS", raising=False)
            for key, value in env.items():
                m.setenv(key, value)
            proc = run_cli("-m", "mumo.train", *FAST, "logger=none", *args, f"hydra.run.dir={name}", cwd=workdir)
        assert proc.returncode == 0, proc.stderr[-2000:]
        results = json.loads((workdir / name / "results.json").read_text())
        assert (results["threads"], results["threads_source"]) == expected


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without a GPU")
def test_asking_for_a_gpu_that_torch_cannot_see_is_one_line_naming_the_key(workdir: Path):
    for accelerator in ("gpu", "cuda", "cuda:0"):
        with pytest.raises(ConfigError, match=f"^trainer.accelerator: {accelerator} needs a CUDA GPU, and torch"):
            check_device(accelerator, "trainer.accelerator")
    for accelerator in ("cpu", "auto"):
        check_device(accelerator, "trainer.accelerator")
    for args, key in [(("mumo.train", "trainer=gpu"), "trainer.accelerator"),
                      (("mumo.bench", "device=cuda"), "device")]:
        proc = run_cli("-m", *args, cwd=workdir)
        assert proc.returncode == 1 and "Traceback" not in proc.stderr
        assert proc.stderr.strip().splitlines()[-1].startswith(f"error: {key}: ")
    assert not [p for p in workdir.rglob("*") if p.is_file()]  # no run directory left behind
