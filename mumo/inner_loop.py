"""The inner loop: adapt theta to each task with a few SGD steps on its support set (paper Alg. 1).

This is the only place where the clone / adapt / evaluate-after-k-steps mechanics live. Two
engines compute the same thing:

- `BatchedEngine` (default): all tasks of a meta-batch at once. Fast weights carry a leading task
  dimension; because tasks are independent, the gradient of the *sum* of per-task support losses
  with respect to the per-task weights is every task's own gradient, in one backward pass.
- `L2LEngine`: learn2learn's `MAML.clone()` / `adapt()` on one task at a time, kept as the
  reference implementation that tests compare against.

tau (the `Condition`) is computed once from the support set and is never adapted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from mumo.data.episode import Episode
from mumo.models.fast_weights import LowRankWeight
from mumo.models.meta_model import Condition, MetaModel
from mumo.models.mlp import Params, Tape


def task_mse(prediction: Tensor, target: Tensor) -> Tensor:
    """Per-task mean squared error: [T, N, d] -> [T] (or [N, d] -> scalar for one task)."""
    return (prediction - target).pow(2).flatten(-2).mean(-1)


def summed_task_mse(prediction: Tensor, target: Tensor) -> Tensor:
    """task_mse(...).sum() in two ops (every task has the same N x d points)."""
    return F.mse_loss(prediction, target, reduction="sum") / (prediction.shape[-2] * prediction.shape[-1])


@dataclass
class InnerLoop:
    """Hyper-parameters of task adaptation.

    Args:
        steps: SGD steps on the support set.
        lr: inner learning rate alpha.
        first_order: drop second-order terms (FOMAML) when meta-training.
        grad_clamp: clamp every inner-gradient element to [-c, c]; None = off.
    """

    steps: int = 5
    lr: float = 1e-3
    first_order: bool = False
    grad_clamp: float | None = None

    def step(self, loss: Tensor, params: Params, tape: Tape, create_graph: bool) -> Params:
        """One SGD step theta <- theta - alpha * clamp(grad) on every task's fast weights.

        Dense tensors get their gradient from autograd. A `LowRankWeight`'s gradient is the outer
        product of the gradient at the layer's output (from autograd) and its input (`tape`), and
        is added in factored form; the clamp is applied exactly (see `_clamped_outer`).
        """
        dense = [n for n, p in params.items() if not isinstance(p, LowRankWeight)]
        factored = [n for n in params if n not in dense]
        outputs = [params[n] for n in dense] + [tape[n][1] for n in factored]
        grads = dict(zip(dense + factored, torch.autograd.grad(loss, outputs, create_graph=create_graph)))
        return {
            n: self._dense_step(p, grads[n]) if n in dense
            else self._low_rank_step(p, tape[n][0] if create_graph else tape[n][0].detach(), grads[n])
            for n, p in params.items()
        }

    def _dense_step(self, p: Tensor, g: Tensor) -> Tensor:
        if self.grad_clamp is None:
            return torch.add(p, g, alpha=-self.lr)
        return ClampedSGDUpdate.apply(p, g, self.lr, self.grad_clamp)

    def _low_rank_step(self, weight: LowRankWeight, a: Tensor, dz: Tensor) -> LowRankWeight | Tensor:
        """W - alpha * clamp(dz^T a) with a [T, N, in] the layer input and dz [T, N, out].

        Without `create_graph` both factors are constants, as the dense gradient is (first order).
        Where the clamp cuts the gradients of many tasks (early in meta-training), per-task dense
        corrections would cost more than dense weights: the layer continues with dense weights.
        """
        if self.grad_clamp is not None and (clamped := _clamped_outer(dz, a, self.grad_clamp)) is not None:
            index, excess = clamped
            if len(index) > DENSE_SWITCH * len(dz):
                return self._dense_step(weight.dense(len(dz)), torch.bmm(dz.transpose(1, 2), a))
            return weight.add_outer(dz * -self.lr, a).add_dense(index, excess * self.lr)
        return weight.add_outer(dz * -self.lr, a)


DENSE_SWITCH = 0.25  # fraction of tasks with a clamped gradient above which a layer turns dense


def _clamped_outer(dz: Tensor, a: Tensor, c: float) -> tuple[Tensor, Tensor] | None:
    """Tasks where clamp(dz^T a, -c, c) differs from dz^T a, and G - clamp(G) for those tasks.

    |G_ij| = |sum_n dz_ni a_nj| <= sum_n |a_nj| max_i' |dz_ni'|, so only tasks where this bound
    exceeds c somewhere can have a clamped element (it is nearly tight: measured mid-training,
    0.53 suspects per layer and step for 0.45 clamped tasks), and G is formed densely for those
    alone. Adding alpha * (G - clamp(G)) to the unclamped step gives the clamped step's value
    and, as clamp passes gradient only where |G| <= c, its derivatives too.
    """
    dz_max = dz.detach().abs().amax(dim=2, keepdim=True)  # [T, N, 1]
    bound = (a.detach().abs() * dz_max).sum(dim=1).amax(dim=1)
    suspects = (bound > c * (1 - 1e-4)).nonzero().squeeze(1)  # margin: bound and G round differently
    if suspects.numel() == 0:
        return None
    g = torch.bmm(dz[suspects].transpose(1, 2), a[suspects])
    excess = g - g.clamp(-c, c)
    hit = excess.flatten(1).ne(0).any(dim=1)
    if not hit.any():
        return None
    return suspects[hit], excess[hit]


class ClampedSGDUpdate(torch.autograd.Function):
    """p - lr * clamp(g, -c, c) as one autograd node.

    Same values and gradients as the composed ops (the clamp passes gradient where |g| <= c), but
    the backward pass is two element-wise ops instead of autograd's five for clamp, mul and sub:
    with the paper's +-10 clamp this is ~25% of a meta-iteration on the CPU. The meta-gradient only
    needs this node's first derivative, so its backward is not itself differentiable.
    """

    @staticmethod
    def forward(ctx, p: Tensor, g: Tensor, lr: float, clamp: float) -> Tensor:
        clamped = g.clamp(-clamp, clamp)
        ctx.save_for_backward(clamped == g)
        ctx.lr = lr
        return torch.add(p, clamped, alpha=-lr)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: Tensor) -> tuple[Tensor, Tensor, None, None]:
        (inside,) = ctx.saved_tensors
        return grad, torch.where(inside, grad, 0.0).mul_(-ctx.lr), None, None


class Engine:
    """Computes per-task query MSE after adaptation for a meta-batch."""

    name = ""  # the `engine` config value that selects it

    def __init__(self, inner_loop: InnerLoop) -> None:
        self.inner_loop = inner_loop

    def query_mse(
        self, model: MetaModel, episode: Episode, *, create_graph: bool, all_steps: bool = False
    ) -> Tensor:
        """Per-task query MSE [S + 1, T] after 0..S steps if `all_steps`, else [1, T] after S.

        `create_graph` keeps the inner gradients differentiable (second-order meta-gradient);
        it is ignored (treated as False) when the inner loop is first order.
        """
        raise NotImplementedError

    def predict_adapted(self, model: MetaModel, episode: Episode, x: Tensor) -> tuple[Tensor, Tensor]:
        """Every task's predictions at its inputs x [T, G, d_in] after modulation (step 0) and after
        all inner steps, detached (for figures)."""
        raise NotImplementedError


class BatchedEngine(Engine):
    """All tasks of the meta-batch adapted together with batched per-task weights.

    Args:
        fast_weights: how the per-task copies of large weight matrices are held: 'dense'
            ([T, out, in] tensors), 'low_rank' (`LowRankWeight`: the prior plus the inner loop's
            outer-product updates; same values; measured on a 2-core CPU, 1.3x (FiLM) to 2.1x
            (MAML) faster per meta-iteration at 50 tasks, 5x at 5,000) or 'auto' (low_rank on
            the CPU; dense on GPUs, where the clamp's data-dependent task subset would force a
            host sync and break CUDA-graph capture).
    """

    name = "batched"

    def __init__(self, inner_loop: InnerLoop, fast_weights: str = "auto") -> None:
        super().__init__(inner_loop)
        self.fast_weights = fast_weights

    def _rank(self, episode: Episode) -> int:
        """Rank of the low-rank updates, or 0 for dense per-task weights."""
        low_rank = self.fast_weights == "low_rank" or (
            self.fast_weights == "auto" and episode.support_x.device.type == "cpu"
        )
        return episode.support_x.shape[1] * self.inner_loop.steps if low_rank else 0

    def adapt(
        self, model: MetaModel, episode: Episode, condition: Condition, *, create_graph: bool
    ) -> Iterator[Params]:
        """Yields every task's fast weights theta_0, theta_1, ..., theta_S (leading dim T)."""
        loop = self.inner_loop
        create_graph = create_graph and not loop.first_order
        params = model.initial_params(episode, rank=self._rank(episode))
        yield params
        for _ in range(loop.steps):
            tape: Tape = {}
            support = model.predict(episode.support_x, params, condition, tape)
            loss = summed_task_mse(support, episode.support_y)
            params = loop.step(loss, params, tape, create_graph)
            yield params

    def query_mse(
        self, model: MetaModel, episode: Episode, *, create_graph: bool, all_steps: bool = False
    ) -> Tensor:
        condition = model.condition(episode)
        last = self.inner_loop.steps
        losses = [
            task_mse(model.predict(episode.query_x, params, condition), episode.query_y)
            for k, params in enumerate(self.adapt(model, episode, condition, create_graph=create_graph))
            if all_steps or k == last
        ]
        return torch.stack(losses)

    def predict_adapted(self, model: MetaModel, episode: Episode, x: Tensor) -> tuple[Tensor, Tensor]:
        condition = model.condition(episode)
        steps = list(self.adapt(model, episode, condition, create_graph=False))
        before, after = (model.predict(x, steps[k], condition).detach() for k in (0, -1))
        return before, after


class L2LEngine(Engine):
    """Reference engine: learn2learn MAML clone/adapt, one task at a time."""

    name = "l2l"

    def _adapt_task(self, model: MetaModel, task: Episode, cond: Condition, first_order: bool) -> Iterator:
        """Yields one task's learner after 0, 1, ..., S steps (the same object, updated in place)."""
        from learn2learn.algorithms import MAML
        from learn2learn.algorithms.maml import maml_update

        loop = self.inner_loop
        learner = MAML(model.task_net(int(task.mode)), lr=loop.lr, first_order=first_order).clone()
        yield learner
        for _ in range(loop.steps):
            support_loss = summed_task_mse(learner(task.support_x, cond.factors, cond.context), task.support_y)
            if loop.grad_clamp is None:
                learner.adapt(support_loss)
            else:
                grads = torch.autograd.grad(support_loss, list(learner.parameters()), create_graph=not first_order)
                grads = [g.clamp(-loop.grad_clamp, loop.grad_clamp) for g in grads]
                learner.module = maml_update(learner.module, loop.lr, grads)
            yield learner

    def _per_task(self, model: MetaModel, episode: Episode, first_order: bool) -> Iterator[tuple]:
        """(task t, its condition, its learner after 0..S steps) for every task of `episode`."""
        condition = model.condition(episode)
        for t in range(episode.num_tasks):
            task, cond = episode.select(slice(t, t + 1)), condition.select(slice(t, t + 1))
            yield t, task, cond, self._adapt_task(model, task, cond, first_order)

    def query_mse(
        self, model: MetaModel, episode: Episode, *, create_graph: bool, all_steps: bool = False
    ) -> Tensor:
        first_order = self.inner_loop.first_order or not create_graph
        last = self.inner_loop.steps
        per_task = [
            torch.cat([
                task_mse(learner(task.query_x, cond.factors, cond.context), task.query_y)
                for k, learner in enumerate(learners) if all_steps or k == last
            ])
            for _, task, cond, learners in self._per_task(model, episode, first_order)
        ]
        return torch.stack(per_task, dim=1)

    def predict_adapted(self, model: MetaModel, episode: Episode, x: Tensor) -> tuple[Tensor, Tensor]:
        last = self.inner_loop.steps
        before, after = [], []
        for t, _, cond, learners in self._per_task(model, episode, first_order=True):
            for k, learner in enumerate(learners):
                if k in (0, last):
                    prediction = learner(x[t : t + 1], cond.factors, cond.context).detach()
                    (before if k == 0 else after).append(prediction)
        if last == 0:
            after = before
        return torch.cat(before), torch.cat(after)


FAST_WEIGHTS = ("auto", "dense", "low_rank")
ENGINES: dict[str, Callable[[InnerLoop, str], Engine]] = {
    "batched": BatchedEngine,
    "l2l": lambda inner_loop, fast_weights: L2LEngine(inner_loop),  # per-task clones: no fast-weight choice
}


def make_engine(name: str, inner_loop: InnerLoop, fast_weights: str = "auto") -> Engine:
    """The engine called `name`; `fast_weights` configures the batched engine (see BatchedEngine)."""
    return ENGINES[name](inner_loop, fast_weights)
