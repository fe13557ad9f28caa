#!/usr/bin/env bash
# One-command GPU check for the graph step (graph_step: the meta-iteration as a CUDA graph). Run on a CUDA machine from the repo root:
#   bash scripts/gpu_check.sh [OUT_DIR]
# 1. the CUDA-graph step against the eager path (20 steps, same losses and parameters);
# 2. python -m mumo.bench device=cuda (batched eager with dense weights vs the graph step; none/film; 50, 500, 5000 tasks);
# 3. a full 70,000-step 2-mode FiLM run through python -m mumo.train (experiment=table1: the paper's
#    schedule, constant Adam 1e-3, hidden layer 1 modulated), timed.
# On a machine without this project's dependencies, put wheels for hydra-core, omegaconf and
# antlr4-python3-runtime in .whl/ first (see README, "GPU check").
set -euo pipefail
out=${1:-${OUT:-outputs/gpu_check}}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if ls .whl/* >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*
  export PYTHONPATH="/tmp/site:$PYTHONPATH"
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
python3 -m pytest -q -p no:cacheprovider tests/test_graph_step.py 2>&1 | tee "$out/graph_step_tests.txt"
python3 -m mumo.bench device=cuda variants=[dense,graph] entry_point_steps=2000 \
  hydra.run.dir="$out/bench" 2>&1 | tail -20 | tee "$out/bench.txt"
start=$(date +%s)
python3 -m mumo.train experiment=table1 trainer=gpu val_every=10000 \
  callbacks.progress_bar.refresh_rate=1000 hydra.run.dir="$out/train70k" 2>&1 | tail -8 | tee "$out/train70k.txt"
echo "70k-step FiLM run: $(( $(date +%s) - start )) s wall, start-up and evaluation included" | tee -a "$out/train70k.txt"
