"""Does a meta-RL run's first stage tell the task's mode, and does its task encoder read it?

    python scripts/rl_task_identity.py outputs/<date>/<time> [--tasks-per-mode 200] [--threads 1]

On fixed tasks of the run's environment (disjoint from its test set), collects the first-stage
rollouts of the run's un-modulated policy (what MuMoMAML's encoder reads, paper §3.2) and prints
two mode-classification accuracies on held-out tasks:

- *data*: a fresh task encoder of the run's shape trained with the true mode labels: how much the
  first-stage rollouts can tell (an upper bound for what meta-training can teach the encoder);
- *encoder*: a logistic regression on the run's own task embeddings: how much its encoder tells.

A MuMoMAML run is needed for the second; a MAML run gives the first only.
"""

from __future__ import annotations

import argparse

import torch
from torch import Tensor, nn

from mumo.checkpoints import load_checkpoint, restore_config, restore_run
from mumo.cli import report_errors
from mumo.rl.policy import RolloutEncoder
from mumo.rl.promp import sample_stages


def accuracy(model: nn.Module, params: list[nn.Parameter], train: tuple[Tensor, Tensor], test: tuple[Tensor, Tensor],
             steps: int, lr: float, batch: int | None = None) -> float:
    """Held-out accuracy of `model` after `steps` Adam steps of cross-entropy on the training pairs."""
    optimizer = torch.optim.Adam(params, lr)
    (x, y), generator = train, torch.Generator().manual_seed(0)
    for _ in range(steps):
        index = torch.randint(len(y), (batch,), generator=generator) if batch else slice(None)
        loss = nn.functional.cross_entropy(model(x[index]), y[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        return (model(test[0]).argmax(-1) == test[1]).float().mean().item()


@report_errors
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="a meta-RL run directory or checkpoint")
    parser.add_argument("--tasks-per-mode", type=int, default=200, help="training tasks per mode (half as many held out)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    checkpoint = load_checkpoint(args.run)
    config = restore_config(checkpoint, {"threads": args.threads})
    _, module = restore_run(config, checkpoint)
    modes = module.env.tasks.modes

    def first_stage(tasks_per_mode: int, seed: int) -> tuple[Tensor, Tensor]:
        tasks = module.env.tasks.fixed_set(tasks_per_mode, seed)
        (stage,) = sample_stages(module.algorithm, module.policy, module.env, tasks, module.rollouts, module.horizon,
                                 module.policy_scale, torch.Generator().manual_seed(seed), steps=0).batches
        return stage.encoder_input(), tasks.mode

    train, test = first_stage(args.tasks_per_mode, 11), first_stage(args.tasks_per_mode // 2, 12)
    torch.manual_seed(0)
    encoder = RolloutEncoder(train[0].shape[-1], config.model.policy.encoder_size)
    probe = nn.Sequential(encoder, nn.Linear(encoder.embedding_size, modes))
    print(f"{module.env.name}, {int(checkpoint['global_step'])} meta-iterations, {module.policy.method}: "
          f"{len(train[1])} + {len(test[1])} tasks, {train[0].shape[1]} first-stage rollouts each")
    print(f"  data:    a fresh encoder (embedding size {encoder.embedding_size}) trained on the modes reads them "
          f"with accuracy {accuracy(probe, list(probe.parameters()), train, test, steps=300, lr=1e-3, batch=32):.3f}")
    if module.policy.encoder is not None:
        with torch.no_grad():
            embedded = [(module.policy.embed(x), y) for x, y in (train, test)]
        mean, std = embedded[0][0].mean(0), embedded[0][0].std(0) + 1e-8
        embedded = [((e - mean) / std, y) for e, y in embedded]
        linear = nn.Linear(embedded[0][0].shape[1], modes)
        print(f"  encoder: a linear read-out of the run's task embeddings gets accuracy "
              f"{accuracy(linear, list(linear.parameters()), *embedded, steps=1000, lr=1e-2):.3f}")
    print(f"  (chance: {1 / modes:.3f})")


if __name__ == "__main__":
    main()
