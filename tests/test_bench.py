"""`python -m mumo.bench` runs its variants side by side and writes a table and bench.json (timings
are measured, never asserted)."""

import json
import os
import re
from pathlib import Path

import pytest

from helpers import FAST, run_cli

from mumo.threads import choose_threads, family_threads

TINY = ["variants=[l2l,dense,low_rank,graph]", "modulations=[film]", "tasks=[4,8]", "l2l_max_tasks=4", "rounds=2",
        "round_seconds=0.01", "warmup=1", "inner_steps=2", "entry_point_steps=3", "eval_tasks_per_mode=5", "load_tasks=4",
        "rl_modulations=[none,film]", "rl_rounds=1",
        'rl_overrides=["tasks_per_mode=1","model.rollouts=2","model.horizon=5","model.promp_steps=1"]',
        "rl_tasks=[navigation,cheetah_speed]", "vector_envs=[cheetah_location]", "vector_envs_n=4",
        "vector_env_steps=3", "classification_rounds=1", "classification_precisions=[32-true,bf16-mixed]"]


def classification_overrides(workdir: Path) -> str:
    from test_classification import write_pack

    write_pack(workdir / "packs", "digits", classes=10, per_class=4, channels=1)
    write_pack(workdir / "packs", "emoji", classes=40, per_class=2, channels=3)
    overrides = [f"data.root={workdir / 'packs'}", "tasks_per_mode=1", "model.net.channels=[4,4,4,4]",
                 "model.net.embedding_size=4", "inner_steps=1"]
    return "classification_overrides=[" + ",".join(f'"{o}"' for o in overrides) + "]"


def test_bench_prints_and_writes_every_variant(workdir: Path):
    proc = run_cli("-m", "mumo.bench", *TINY, classification_overrides(workdir), "hydra.run.dir=bench",
                   "paths.output_dir=results/bench", cwd=workdir)  # a directory that does not exist yet
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = json.loads((workdir / "results" / "bench" / "bench.json").read_text())["rows"]
    timed = [(r["variant"], r["tasks"]) for r in rows if r["what"] == "meta-iteration"]
    assert timed == [("l2l", 4), ("dense", 4), ("low_rank", 4), ("graph", 4), ("dense", 8), ("low_rank", 8), ("graph", 8)]
    assert {r["speedup_vs"] for r in rows if r["what"] == "meta-iteration" and r["tasks"] == 4} == {"l2l"}
    assert [r["variant"] for r in rows if r["what"] == "python -m mumo.train"] == ["dense", "low_rank", "graph"]
    loaded = [(r["what"], r["threads"]) for r in rows if r["what"].startswith("meta-iteration, ")]
    all_cpus = len(os.sched_getaffinity(0))
    auto = choose_threads("auto", family_threads("mumo.regression.data.RegressionDataModule"), "cpu").count
    assert loaded == [("meta-iteration, idle", auto), ("meta-iteration, idle", all_cpus),  # 1 unless OMP_NUM_THREADS
                      ("meta-iteration, 1 busy process", auto), ("meta-iteration, 1 busy process", all_cpus)]
    rl = [(r["what"], r["modulation"]) for r in rows if r["what"].startswith("RL")]
    assert rl == [(f"RL {task}, {part}", m) for task in ("navigation", "cheetah_speed") for m in ("none", "film")
                  for part in ("sampling", "of which simulation", "update", "total")]
    steps = [(r["what"], r["variant"]) for r in rows if r["what"].startswith("env steps/s")]
    assert steps == [("env steps/s, cheetah_location", "batched"),
                     ("env steps/s, cheetah_location", "gymnasium sync vector env")]
    classification = [(r["variant"], r["modulation"], r["speedup_vs"]) for r in rows
                      if r["what"] == "classification meta-iteration"]
    assert classification == [(f"{engine}{label}", m, f"l2l{label}") for m in ("none", "film")
                              for label in ("", " bf16-mixed") for engine in ("l2l", "batched")]
    timed = {(r["variant"], r["modulation"]): r for r in rows if r["what"] == "classification meta-iteration"}
    assert all(r["gflop"] > 0 for r in timed.values())
    assert timed["l2l", "film"]["gflop"] > timed["l2l", "none"]["gflop"]  # the encoder's arithmetic
    bounds = [r for r in rows if r["what"] == "classification arithmetic bound"]
    assert [r["modulation"] for r in bounds] == ["none", "film"]  # float32 only
    for bound in bounds:  # the batched engine's FLOPs at the matmul rate
        l2l, batched = timed["l2l", bound["modulation"]], timed["batched", bound["modulation"]]
        assert bound["speedup"] == pytest.approx(l2l["median_ms"] / bound["median_ms"])
        assert f"{batched['gflop']:.1f} GFLOP (batched)" in bound["note"]
    sampling = [r for r in rows if r["what"] == "classification meta-batch sampling"]
    assert len(sampling) == 1 and sampling[0]["tasks"] == timed["batched", "film"]["tasks"] == 2
    assert re.search(r"^classification meta-batch sampling .* of a batched film meta-iteration$", proc.stdout,
                     re.MULTILINE)
    assert all(r["median_ms"] > 0 and r["tasks_per_s"] > 0 for r in rows)
    assert re.search(r"^meta-iteration\s+low_rank\s+film\s+4\s", proc.stdout, re.MULTILINE)


def test_bench_from_a_checkpoint_of_another_model_is_a_one_line_error(workdir: Path):
    train = run_cli("-m", "mumo.train", *FAST, "modulation=none", "hydra.run.dir=maml", cwd=workdir)
    assert train.returncode == 0, train.stderr[-2000:]
    proc = run_cli("-m", "mumo.bench", *TINY, "classification_modulations=[]", "ckpt_path=maml/checkpoints/last.ckpt",
                   cwd=workdir)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith("error: ckpt_path: its weights do not fit the model of")
    assert "Traceback" not in proc.stderr
