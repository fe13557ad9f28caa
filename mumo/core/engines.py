"""Engines run the inner loop of supervised task families (paper Alg. 1, lines 4-8).

An engine adapts every task of a meta-batch with `InnerSGD` on its support set and returns the
per-task query loss after 0..S steps. Two engines compute the same thing:

- `BatchedEngine` (default): all tasks at once, per-task fast weights with a leading task
  dimension; one `autograd.grad` of the summed support losses per step.
- `L2LEngine`: learn2learn's `MAML.clone()` / `adapt()` on one task at a time, kept as the
  reference implementation that tests compare against.

What an engine needs from a family:
- a model with `condition(episode)` (computed once from the support set, never adapted),
  `initial_params(episode, rank)`, `predict(x, params, condition, tape)` and `task_net(mode)`
  (`AdaptableModel`);
- a `TaskLoss`: per-task loss [T] of predictions against targets (`MSE` for regression,
  `CrossEntropy` for classification).
The RL family has no stored support set (each inner step collects fresh rollouts) and calls
`InnerSGD` from its own algorithm (`mumo.rl.promp`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mumo.core.episode import Episode
from mumo.core.inner_sgd import InnerSGD
from mumo.core.low_rank import Params, Tape
from mumo.core.modulation import Condition


class TaskLoss:
    """A per-task loss: predictions and targets [T, N, ...] -> [T] (or [N, ...] -> scalar)."""

    def __call__(self, prediction: Tensor, target: Tensor) -> Tensor:
        raise NotImplementedError

    def summed(self, prediction: Tensor, target: Tensor) -> Tensor:
        """The sum over tasks, whose gradient is every task's own (the inner step's loss)."""
        return self(prediction, target).sum()

    def metric(self, prediction: Tensor, target: Tensor) -> Tensor:
        """What evaluation reports per task [T]: the loss itself unless a family says otherwise."""
        return self(prediction, target)


class MSE(TaskLoss):
    """Mean squared error over a task's points and output dimensions (regression)."""

    def __call__(self, prediction: Tensor, target: Tensor) -> Tensor:
        return (prediction - target).pow(2).flatten(-2).mean(-1)

    def summed(self, prediction: Tensor, target: Tensor) -> Tensor:
        """In two ops: every task has the same N x d points."""
        return F.mse_loss(prediction, target, reduction="sum") / (prediction.shape[-2] * prediction.shape[-1])


class CrossEntropy(TaskLoss):
    """Mean cross-entropy over a task's points (classification): logits [T, N, classes] and class
    indices [T, N] -> [T] (or [N, classes], [N] -> scalar)."""

    def __call__(self, prediction: Tensor, target: Tensor) -> Tensor:
        flat = F.cross_entropy(prediction.flatten(0, -2), target.flatten(), reduction="none")
        return flat.view(target.shape).mean(-1)

    def metric(self, prediction: Tensor, target: Tensor) -> Tensor:
        """Query accuracy per task (at least float32: under bfloat16 autocast 0.2 would be 0.2002)."""
        return (prediction.argmax(-1) == target).to(torch.promote_types(prediction.dtype, torch.float32)).mean(-1)


class AdaptableModel(Protocol):
    """What an engine calls on a family's meta-model (see `mumo.core.meta_model.MetaModel`)."""

    def condition(self, episode: Episode) -> Condition: ...
    def initial_params(self, episode: Episode, rank: int = 0) -> Params: ...
    def predict(self, x: Tensor, params: Params, condition: Condition, tape: Tape | None = None) -> Tensor: ...
    def task_net(self, mode: int) -> nn.Module: ...


class Engine:
    """Computes the per-task query loss of a meta-batch after adaptation."""

    name = ""  # the `engine` config value that selects it

    def __init__(self, inner_sgd: InnerSGD, loss: TaskLoss) -> None:
        self.inner_sgd, self.loss = inner_sgd, loss

    def query_loss(
        self, model: AdaptableModel, episode: Episode, *, create_graph: bool, all_steps: bool = False,
        metric: bool = False,
    ) -> Tensor:
        """Per-task query loss [S + 1, T] after 0..S steps if `all_steps`, else [1, T] after S;
        with `metric`, the loss's evaluation metric instead (e.g. accuracy).

        `create_graph` keeps the inner gradients differentiable (second-order meta-gradient);
        it is ignored (treated as False) when the inner loop is first order.
        """
        raise NotImplementedError

    def predict_adapted(self, model: AdaptableModel, episode: Episode, x: Tensor) -> tuple[Tensor, Tensor]:
        """Every task's predictions at its inputs x [T, G, d_in] after modulation (step 0) and after
        all inner steps, detached (for figures)."""
        raise NotImplementedError


class BatchedEngine(Engine):
    """All tasks of the meta-batch adapted together with batched per-task weights.

    Args:
        weight_updates: how the per-task copies of large weight matrices are held: 'dense'
            ([T, out, in] tensors), 'low_rank' (`LowRankWeight`: the prior plus the inner loop's
            outer-product updates; same values; measured on a 2-core CPU, 1.3x (FiLM) to 2.1x
            (MAML) faster per meta-iteration at 50 tasks, 5x at 5,000) or 'auto' (low_rank on
            the CPU; dense on GPUs, where the clamp's data-dependent task subset would force a
            host sync and break CUDA-graph capture). Only networks that support it (the MLP)
            use low-rank weights; `initial_params` decides per layer.
    """

    name = "batched"

    def __init__(self, inner_sgd: InnerSGD, loss: TaskLoss, weight_updates: str = "auto") -> None:
        super().__init__(inner_sgd, loss)
        self.weight_updates = weight_updates

    def _rank(self, episode: Episode) -> int:
        """Rank of the low-rank updates, or 0 for dense per-task weights."""
        low_rank = self.weight_updates == "low_rank" or (
            self.weight_updates == "auto" and episode.support_x.device.type == "cpu"
        )
        return episode.support_x.shape[1] * self.inner_sgd.steps if low_rank else 0

    def adapt(
        self, model: AdaptableModel, episode: Episode, condition: Condition, *, create_graph: bool
    ) -> Iterator[Params]:
        """Yields every task's fast weights theta_0, theta_1, ..., theta_S (leading dim T)."""
        loop = self.inner_sgd
        create_graph = create_graph and not loop.first_order
        params = model.initial_params(episode, rank=self._rank(episode))
        yield params
        for k in range(loop.steps):
            tape: Tape = {}
            support = model.predict(episode.support_x, params, condition, tape)
            loss = self.loss.summed(support, episode.support_y)
            params = loop.step(loss, params, tape, create_graph, lr=loop.task_lr(episode.mode, k, support.dtype))
            yield params

    def query_loss(
        self, model: AdaptableModel, episode: Episode, *, create_graph: bool, all_steps: bool = False,
        metric: bool = False,
    ) -> Tensor:
        condition = model.condition(episode)
        last = self.inner_sgd.steps
        measure = self.loss.metric if metric else self.loss
        losses = [
            measure(model.predict(episode.query_x, params, condition), episode.query_y)
            for k, params in enumerate(self.adapt(model, episode, condition, create_graph=create_graph))
            if all_steps or k == last
        ]
        return torch.stack(losses)

    def predict_adapted(self, model: AdaptableModel, episode: Episode, x: Tensor) -> tuple[Tensor, Tensor]:
        condition = model.condition(episode)
        steps = list(self.adapt(model, episode, condition, create_graph=False))
        before, after = (model.predict(x, steps[k], condition).detach() for k in (0, -1))
        return before, after


class L2LEngine(Engine):
    """Reference engine: learn2learn MAML clone/adapt, one task at a time."""

    name = "l2l"

    def _adapt_task(self, model: AdaptableModel, task: Episode, cond: Condition, first_order: bool) -> Iterator:
        """Yields one task's learner after 0, 1, ..., S steps (the same object, updated in place;
        unchanged after its mode's number of steps)."""
        from learn2learn.algorithms import MAML
        from learn2learn.algorithms.maml import maml_update

        loop, mode = self.inner_sgd, int(task.mode)
        lr = loop.mode_lr(mode)
        learner = MAML(model.task_net(mode), lr=lr, first_order=first_order).clone()
        yield learner
        for k in range(loop.steps):
            if k < loop.mode_steps(mode):
                support_loss = self.loss.summed(learner(task.support_x, condition=cond), task.support_y)
                if loop.grad_clamp is None:
                    learner.adapt(support_loss)
                else:
                    grads = torch.autograd.grad(support_loss, list(learner.parameters()), create_graph=not first_order)
                    grads = [g.clamp(-loop.grad_clamp, loop.grad_clamp) for g in grads]
                    learner.module = maml_update(learner.module, lr, grads)
            yield learner

    def _per_task(self, model: AdaptableModel, episode: Episode, first_order: bool) -> Iterator[tuple]:
        """(task t, its condition, its learner after 0..S steps) for every task of `episode`."""
        condition = model.condition(episode)
        for t in range(episode.num_tasks):
            task, cond = episode.select(slice(t, t + 1)), condition.select(slice(t, t + 1))
            yield t, task, cond, self._adapt_task(model, task, cond, first_order)

    def query_loss(
        self, model: AdaptableModel, episode: Episode, *, create_graph: bool, all_steps: bool = False,
        metric: bool = False,
    ) -> Tensor:
        first_order = self.inner_sgd.first_order or not create_graph
        last = self.inner_sgd.steps
        measure = self.loss.metric if metric else self.loss
        per_task = [
            torch.cat([
                measure(learner(task.query_x, condition=cond), task.query_y).view(1)
                for k, learner in enumerate(learners) if all_steps or k == last
            ])
            for _, task, cond, learners in self._per_task(model, episode, first_order)
        ]
        return torch.stack(per_task, dim=1)

    def predict_adapted(self, model: AdaptableModel, episode: Episode, x: Tensor) -> tuple[Tensor, Tensor]:
        last = self.inner_sgd.steps
        before, after = [], []
        for t, _, cond, learners in self._per_task(model, episode, first_order=True):
            for k, learner in enumerate(learners):
                if k in (0, last):
                    prediction = learner(x[t : t + 1], condition=cond).detach()
                    (before if k == 0 else after).append(prediction)
        if last == 0:
            after = before
        return torch.cat(before), torch.cat(after)


WEIGHT_UPDATES = ("auto", "dense", "low_rank")
ENGINES: dict[str, Callable[[InnerSGD, TaskLoss, str], Engine]] = {
    "batched": BatchedEngine,
    "l2l": lambda inner_sgd, loss, weight_updates: L2LEngine(inner_sgd, loss),  # per-task clones: dense
}


def make_engine(name: str, inner_sgd: InnerSGD, loss: TaskLoss, weight_updates: str = "auto") -> Engine:
    """The engine called `name`; `weight_updates` configures the batched engine (see BatchedEngine)."""
    return ENGINES[name](inner_sgd, loss, weight_updates)
