"""The inner update rule: a small differentiable SGD optimiser over per-task fast weights (paper Alg. 1).

`InnerSGD.step` takes the *sum* of per-task losses and every task's parameters (leading task
dimension T). Tasks are independent, so one `autograd.grad` of the sum gives each task its own
gradient; the update theta - alpha * transform(grad) is differentiable (second-order
meta-gradients) unless `first_order`. The gradient transform is the element-wise clamp of the
original code (`grad_clamp`), fused with the update into one autograd node.

Weights may also be held as `LowRankWeight`s (the prior plus outer-product updates): an opt-in
backend for linear layers whose network records each such layer's input and output in a `Tape`,
from which their gradient is formed in factored form.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from mumo.core.low_rank import LowRankWeight, Params, Tape


@dataclass
class InnerSGD:
    """SGD on every task's fast weights at once: theta <- theta - alpha * clamp(grad).

    Args:
        steps: inner steps per task (run by the engine or the RL algorithm).
        lr: inner learning rate alpha.
        first_order: drop second-order terms (FOMAML) when meta-training.
        grad_clamp: clamp every inner-gradient element to [-c, c]; None = off.
        lr_per_mode, steps_per_mode: Multi-MAML's per-mode settings (the authors trained one MAML
            per dataset, each with its own alpha and number of steps): a task of mode m adapts
            with lr_per_mode[m] for min(steps_per_mode[m], `steps`) steps, then stays where it
            is. They read the true mode label, so only Multi-MAML may use them. None: `lr`, `steps`.
    """

    steps: int = 5
    lr: float = 1e-3
    first_order: bool = False
    grad_clamp: float | None = None
    lr_per_mode: Sequence[float] | None = None
    steps_per_mode: Sequence[int] | None = None
    _schedules: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def per_mode(self) -> bool:
        return self.lr_per_mode is not None or self.steps_per_mode is not None

    def mode_lr(self, mode: int) -> float:
        """alpha of a task of mode `mode`."""
        return self.lr if self.lr_per_mode is None else float(self.lr_per_mode[mode])

    def mode_steps(self, mode: int) -> int:
        """How many of the `steps` inner steps a task of mode `mode` takes."""
        return self.steps if self.steps_per_mode is None else min(self.steps, int(self.steps_per_mode[mode]))

    def task_lr(self, mode: Tensor, step: int, dtype: torch.dtype) -> float | Tensor:
        """alpha of every task [T] at inner step `step` (0-based): its mode's rate, or 0 once the
        task has taken its mode's steps (theta - 0 * grad = theta, values and derivatives); the
        plain `lr` without per-mode settings. The schedule table is built once per device and
        dtype, never while a CUDA graph is being captured (the warm-up steps build it)."""
        if not self.per_mode:
            return self.lr
        key = (mode.device, dtype)
        if key not in self._schedules:
            modes = range(len(self.lr_per_mode if self.lr_per_mode is not None else self.steps_per_mode))
            table = [[self.mode_lr(m) if k < self.mode_steps(m) else 0.0 for m in modes] for k in range(self.steps)]
            self._schedules[key] = torch.tensor(table, dtype=torch.float64).to(mode.device, dtype)
        return self._schedules[key][step][mode]

    def step(self, loss: Tensor, params: Params, tape: Tape | None = None, create_graph: bool = True,
             lr: float | Tensor | None = None) -> Params:
        """One SGD step theta <- theta - alpha * clamp(grad) on every task's fast weights; `lr`
        (a float, or one alpha per task [T], see `task_lr`) replaces `self.lr` if given.

        Dense tensors get their gradient from autograd. A `LowRankWeight`'s gradient is the outer
        product of the gradient at the layer's output (from autograd) and its input (`tape`), and
        is added in factored form; the clamp is applied exactly (see `_clamped_outer`).
        """
        tape = {} if tape is None else tape
        lr = self.lr if lr is None else lr
        dense = [n for n, p in params.items() if not isinstance(p, LowRankWeight)]
        factored = [n for n in params if n not in dense]
        outputs = [params[n] for n in dense] + [tape[n][1] for n in factored]
        grads = dict(zip(dense + factored, torch.autograd.grad(loss, outputs, create_graph=create_graph)))
        return {
            n: self._dense_step(p, grads[n], lr) if n in dense
            else self._low_rank_step(p, tape[n][0] if create_graph else tape[n][0].detach(), grads[n], lr)
            for n, p in params.items()
        }

    def _dense_step(self, p: Tensor, g: Tensor, lr: float | Tensor) -> Tensor:
        if isinstance(lr, Tensor):
            lr = lr.view(-1, *(1,) * (p.dim() - 1))
        if self.grad_clamp is not None:
            return ClampedSGDUpdate.apply(p, g, lr, self.grad_clamp)
        return torch.addcmul(p, g, lr, value=-1) if isinstance(lr, Tensor) else torch.add(p, g, alpha=-lr)

    def _low_rank_step(
        self, weight: LowRankWeight, a: Tensor, dz: Tensor, lr: float | Tensor
    ) -> LowRankWeight | Tensor:
        """W - alpha * clamp(dz^T a) with a [T, N, in] the layer input and dz [T, N, out].

        Without `create_graph` both factors are constants, as the dense gradient is (first order).
        Where the clamp cuts the gradients of many tasks (early in meta-training), per-task dense
        corrections would cost more than dense weights: the layer continues with dense weights.
        """
        task_lr = lr.view(-1, 1, 1) if isinstance(lr, Tensor) else lr
        if self.grad_clamp is not None and (clamped := _clamped_outer(dz, a, self.grad_clamp)) is not None:
            index, excess = clamped
            if len(index) > DENSE_SWITCH * len(dz):
                return self._dense_step(weight.dense(len(dz)), torch.bmm(dz.transpose(1, 2), a), lr)
            excess_lr = task_lr[index] if isinstance(lr, Tensor) else lr
            return weight.add_outer(dz * -task_lr, a).add_dense(index, excess * excess_lr)
        return weight.add_outer(dz * -task_lr, a)


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
    """p - lr * clamp(g, -c, c) as one autograd node (lr a float, or a tensor that broadcasts to p).

    Same values and gradients as the composed ops (the clamp passes gradient where |g| <= c), but
    the backward pass is two element-wise ops instead of autograd's five for clamp, mul and sub:
    with the paper's +-10 clamp this is ~25% of a meta-iteration on the CPU. The meta-gradient only
    needs this node's first derivative, so its backward is not itself differentiable.
    """

    @staticmethod
    def forward(ctx, p: Tensor, g: Tensor, lr: float | Tensor, clamp: float) -> Tensor:
        clamped = g.clamp(-clamp, clamp)
        ctx.save_for_backward(clamped == g)
        ctx.lr = lr
        return torch.addcmul(p, clamped, lr, value=-1) if isinstance(lr, Tensor) else torch.add(p, clamped, alpha=-lr)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: Tensor) -> tuple[Tensor, Tensor, None, None]:
        (inside,) = ctx.saved_tensors
        return grad, torch.where(inside, grad, 0.0).mul_(-ctx.lr), None, None
