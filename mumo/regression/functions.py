"""Multimodal few-shot regression task distributions (paper §4.1).

Each family draws its parameters per task from uniform ranges; inputs are x ~ U(-5, 5); every
target (support and query) gets N(0, sigma^2) noise. A meta-batch is stratified: the same number
of tasks of every mode, concatenated in mode order.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from mumo.core.episode import Episode

NUM_PARAMS = 3  # width of Episode.params; families with fewer parameters are zero-padded


@dataclass(frozen=True)
class FunctionFamily:
    """A parametric family y = f(x; p) with independent uniform priors on p."""

    name: str
    ranges: tuple[tuple[float, float], ...]
    fn: Callable[[Tensor, Tensor], Tensor]  # (x [..., N, 1], p [..., 1, NUM_PARAMS]) -> y
    random_sign: bool = False  # flip the sign of the first parameter with probability 1/2

    def sample_params(self, n: int, generator: torch.Generator) -> Tensor:
        lo, hi = torch.tensor(self.ranges, dtype=torch.float32).T
        params = lo + (hi - lo) * torch.rand(n, len(self.ranges), generator=generator)
        if self.random_sign:
            sign = torch.randint(0, 2, (n,), generator=generator) * 2 - 1
            params[:, 0] *= sign
        return torch.nn.functional.pad(params, (0, NUM_PARAMS - len(self.ranges)))

    def __call__(self, x: Tensor, params: Tensor) -> Tensor:
        """Noise-free targets for inputs x [T, N, 1] and parameters [T, NUM_PARAMS]."""
        return self.fn(x, params.unsqueeze(-2))


def _p(params: Tensor, i: int) -> Tensor:
    return params[..., i : i + 1]


# Order matters: `modes` = M takes the first M families (2: sin + lin, 3: + quad, 5: + tanh, abs).
FAMILIES: tuple[FunctionFamily, ...] = (
    # A * sin(x - phi), A ~ U(0.1, 5), phi ~ U(0, pi)   (sign convention of the original code)
    FunctionFamily("sinusoid", ((0.1, 5.0), (0.0, math.pi)), lambda x, p: _p(p, 0) * torch.sin(x - _p(p, 1))),
    # a * x + b
    FunctionFamily("linear", ((-3.0, 3.0), (-3.0, 3.0)), lambda x, p: _p(p, 0) * x + _p(p, 1)),
    # s * alpha * (x - c)^2 + b, alpha ~ U(0.02, 0.15), s = +-1
    FunctionFamily(
        "quadratic",
        ((0.02, 0.15), (-3.0, 3.0), (-3.0, 3.0)),
        lambda x, p: _p(p, 0) * (x - _p(p, 1)) ** 2 + _p(p, 2),
        random_sign=True,
    ),
    # a * tanh(x - c) + b
    FunctionFamily(
        "tanh", ((-3.0, 3.0), (-3.0, 3.0), (-3.0, 3.0)), lambda x, p: _p(p, 0) * torch.tanh(x - _p(p, 1)) + _p(p, 2)
    ),
    # a * |x - c| + b
    FunctionFamily(
        "abs", ((-3.0, 3.0), (-3.0, 3.0), (-3.0, 3.0)), lambda x, p: _p(p, 0) * (x - _p(p, 1)).abs() + _p(p, 2)
    ),
)

FAMILY_NAMES = tuple(f.name for f in FAMILIES)


class RegressionTasks:
    """The multimodal regression task distribution with `modes` families: the first `modes` of
    FAMILIES (the paper's 2, 3 and 5 modes), or the ones named in `families` (then `modes` is
    their number).

    `sample` draws a stratified meta-batch in one vectorised pass per family from the given
    generator, so the same generator state always gives the same tasks.
    """

    def __init__(
        self,
        modes: int = 2,
        shots: int = 5,
        queries: int = 5,
        noise_std: float = 0.3,
        input_range: tuple[float, float] = (-5.0, 5.0),
        families: list[str] | None = None,
    ) -> None:
        self.modes = modes
        by_name = {f.name: f for f in FAMILIES}
        self.families = tuple(by_name[name] for name in families) if families else FAMILIES[:modes]
        self.shots, self.queries = shots, queries
        self.noise_std = float(noise_std)
        self.input_range = tuple(input_range)

    @property
    def mode_names(self) -> list[str]:
        return [f.name for f in self.families]

    def sample(self, tasks_per_mode: int, generator: torch.Generator) -> Episode:
        """A meta-batch of `tasks_per_mode` tasks of each mode, in mode order."""
        n, points = tasks_per_mode, self.shots + self.queries
        lo, hi = self.input_range
        xs, ys, params = [], [], []
        for family in self.families:
            p = family.sample_params(n, generator)
            x = lo + (hi - lo) * torch.rand(n, points, 1, generator=generator)
            y = family(x, p) + self.noise_std * torch.randn(n, points, 1, generator=generator)
            xs.append(x), ys.append(y), params.append(p)
        x, y = torch.cat(xs), torch.cat(ys)
        mode = torch.arange(self.modes).repeat_interleave(n)
        k = self.shots
        return Episode(x[:, :k], y[:, :k], x[:, k:], y[:, k:], mode, torch.cat(params))

    def fixed_set(self, tasks_per_mode: int, seed: int) -> Episode:
        """A task set that depends only on (`tasks_per_mode`, `seed`) and the distribution."""
        return self.sample(tasks_per_mode, torch.Generator().manual_seed(seed))

    def true_function(self, mode: Tensor, params: Tensor, x: Tensor) -> Tensor:
        """Noise-free targets of tasks with labels `mode` [T] and `params` [T, P] at x [T, N, 1]."""
        y = torch.empty_like(x)
        for m, family in enumerate(self.families):
            sel = mode == m
            y[sel] = family(x[sel], params[sel])
        return y
