"""hydra/launcher=local: jobs of a sweep run in parallel worker processes (Hydra's joblib launcher),
one thread each, writing exactly what the basic launcher writes; a failed job loses nothing else."""

import json
from pathlib import Path

import pytest
from helpers import FAST, comparable, run_cli

SWEEP = [*FAST, "logger=none", "callbacks.progress_bar.refresh_rate=0"]


def job_results(sweep: Path) -> dict[str, dict]:
    out = {}
    for path in sorted(sweep.glob("*/results.json")):
        out[path.parent.name] = comparable(json.loads(path.read_text()))
    return out


def test_parallel_sweep_writes_what_a_sequential_one_writes(workdir: Path, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    parallel = run_cli("-m", "mumo.train", "-m", "hydra/launcher=local", "hydra.launcher.n_jobs=2",
                       "modulation=film,sigmoid", *SWEEP, "hydra.sweep.dir=parallel", cwd=workdir)
    assert parallel.returncode == 0, parallel.stderr[-3000:]
    assert "Joblib.Parallel(n_jobs=2" in parallel.stdout + parallel.stderr
    sequential = run_cli("-m", "mumo.train", "-m", "modulation=film,sigmoid", "threads=1", *SWEEP,
                         "hydra.sweep.dir=sequential", cwd=workdir)
    assert sequential.returncode == 0, sequential.stderr[-3000:]

    results = job_results(workdir / "parallel")
    assert list(results) == ["0", "1"] and [r["modulation"] for r in results.values()] == ["film", "sigmoid"]
    assert all(r["threads"] == 1 for r in results.values())
    assert results == job_results(workdir / "sequential")
    for job in ("0", "1"):  # the same files, laid out as the basic launcher lays them out
        names = {p.relative_to(workdir / "sequential" / job) for p in (workdir / "sequential" / job).rglob("*")}
        assert names == {p.relative_to(workdir / "parallel" / job) for p in (workdir / "parallel" / job).rglob("*")}


@pytest.mark.parametrize("launcher", ["local", "basic"])
def test_a_failed_job_does_not_lose_the_others(workdir: Path, launcher: str):
    # job 0 fails at once; job 1 must still train, and write its results
    proc = run_cli("-m", "mumo.train", "-m", f"hydra/launcher={launcher}", "inner_lr=-1,0.001", *SWEEP,
                   "hydra.sweep.dir=sweep", cwd=workdir)
    assert proc.returncode == 1
    assert not (workdir / "sweep" / "0" / "results.json").exists()
    assert json.loads((workdir / "sweep" / "1" / "results.json").read_text())["inner_lr"] == 0.001
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert errors and all(line.startswith("error: job 0 (") and line.endswith("inner_lr: must be > 0 (got -1.0)")
                          for line in errors)
    assert "Traceback" not in proc.stderr


def test_zero_jobs_at_once_is_one_line_before_anything_is_written(workdir: Path):
    proc = run_cli("-m", "mumo.train", "-m", "hydra/launcher=local", "hydra.launcher.n_jobs=0", *SWEEP,
                   "hydra.sweep.dir=sweep", cwd=workdir)
    assert proc.returncode == 1
    assert proc.stderr.strip() == ("error: hydra.launcher.n_jobs: 0 jobs at once cannot run a sweep; "
                                   "give a number of jobs, or -1 for one per CPU")
    assert not (workdir / "sweep").exists()
