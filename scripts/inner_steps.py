"""Where does a supervised run's inner loop start, and how fast does it move?

    python scripts/inner_steps.py outputs/<date>/<time> [--tasks 200] [--threads 1]

On the first test tasks of the run's fixed test set (the same number from every mode), prints
the support loss and accuracy and the query accuracy before adaptation and after each inner step
(paper Alg. 1, the run's own engine and step size) and, for MuMoMAML, the range of each
modulated layer's factors (FiLM: 1 + gamma and beta; gates: the gate). A classification run's
query accuracy before any step is chance by construction; its support loss there says how far
from uniform the prior's predictions start.
"""

from __future__ import annotations

import argparse

import torch

from mumo.checkpoints import load_checkpoint, restore_config, restore_run
from mumo.cli import report_errors
from mumo.plots import first_tasks_per_mode


@report_errors
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="a run directory or checkpoint of a regression or classification run")
    parser.add_argument("--tasks", type=int, default=200, help="test tasks, split evenly over the modes")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    checkpoint = load_checkpoint(args.run)
    datamodule, learner = restore_run(restore_config(checkpoint, {"threads": args.threads}), checkpoint)
    model, engine, loss = learner.model, learner.engine, learner.loss
    test_set = datamodule.test_set()
    tasks = first_tasks_per_mode(test_set, max(1, args.tasks // len(learner.mode_names)))
    print(f"{model.method} ({model.modulation}), step {checkpoint['global_step']}, "
          f"{tasks.num_tasks} test tasks; inner lr {learner.inner_loop.lr}")
    with torch.no_grad():
        condition = model.condition(tasks)
    for layer, factors in enumerate(condition.factors or ()):
        ranges = ", ".join(f"[{f.min():.2f}, {f.max():.2f}] (mean {f.mean():.2f})" for f in factors)
        print(f"  modulated layer {layer}: factors {ranges}")
    for step, params in enumerate(engine.adapt(model, tasks, condition, create_graph=False)):
        with torch.no_grad():
            support = model.predict(tasks.support_x, params, condition)
            query = model.predict(tasks.query_x, params, condition)
        print(f"  step {step}: support loss {loss(support, tasks.support_y).mean():.3f}, "
              f"support {learner.metric} {loss.metric(support, tasks.support_y).mean():.3f}, "
              f"query {learner.metric} {loss.metric(query, tasks.query_y).mean():.3f}")


if __name__ == "__main__":
    main()
