"""N-way K-shot image-classification tasks drawn from several datasets ("modes"), paper §B.

A task picks one mode, N distinct classes of that mode's split, and K support + Q query images
of each class (distinct images); its labels 0..N-1 are assigned to the classes in a random order
(a fresh permutation per task). Meta-batches are balanced: the same number of tasks of every mode,
in mode order; the mode label is kept for per-mode metrics and Multi-MAML only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from mumo.core.episode import Episode
from mumo.errors import ConfigError

SPLITS = ("train", "val", "test")


@dataclass
class ImageMode:
    """One mode's images of one split.

    Attributes:
        name: the mode's name ('digits').
        images: uint8 [n, C, H, W].
        table: [classes, most] indices into `images` of each class's instances, padded with -1.
        rotation: [classes] quarter turns applied to the class's images (0 for unrotated modes).
        class_names: a name per class.
    """

    name: str
    images: Tensor
    table: Tensor
    rotation: Tensor
    class_names: list[str]

    @classmethod
    def from_pack(cls, name: str, pack: dict, split: str) -> ImageMode:
        """The classes of `split` in a packed mode (`mumo.classification.offline`); in rotated
        modes every (base class, k x 90 degrees) is a class of its own."""
        labels, base_split = np.asarray(pack["labels"]), np.asarray(pack["split"])
        bases = np.flatnonzero(base_split == SPLITS.index(split))
        turns = range(4) if bool(pack["rotations"]) else range(1)
        members = [np.flatnonzero(labels == b) for b in bases]
        most = max(len(m) for m in members)
        rows, rotation, names = [], [], []
        for b, m in zip(bases, members):
            for k in turns:
                rows.append(np.pad(m, (0, most - len(m)), constant_values=-1))
                rotation.append(k)
                names.append(f"{pack['names'][b]}" + (f" {90 * k}°" if len(turns) > 1 else ""))
        return cls(name, torch.from_numpy(np.asarray(pack["images"])), torch.from_numpy(np.stack(rows)),
                   torch.tensor(rotation), names)

    @property
    def num_classes(self) -> int:
        return len(self.table)

    def fewest_instances(self) -> int:
        return int((self.table >= 0).sum(1).min())


class ImageTasks:
    """Balanced meta-batches of N-way K-shot tasks with Q queries per class over `modes`.

    Args:
        modes: one `ImageMode` per mode, all of one split.
        ways, shots, queries: N, K and Q.
    """

    def __init__(self, modes: Sequence[ImageMode], ways: int = 5, shots: int = 1, queries: int = 1) -> None:
        for mode in modes:
            if mode.num_classes < ways:
                raise ConfigError("data.ways", f"{mode.name} has {mode.num_classes} classes in a split (got {ways})")
            if mode.fewest_instances() < shots + queries:
                raise ConfigError("data.queries", f"{mode.name} has classes with {mode.fewest_instances()} images: "
                                  f"shots + queries must be <= {mode.fewest_instances()} (got {shots + queries})")
        self.mode_list, self.ways, self.shots, self.queries = list(modes), ways, shots, queries

    @property
    def modes(self) -> int:
        return len(self.mode_list)

    @property
    def mode_names(self) -> list[str]:
        return [m.name for m in self.mode_list]

    def sample(self, tasks_per_mode: int | Sequence[int], generator: torch.Generator) -> Episode:
        """`tasks_per_mode` tasks of every mode (or, given one count per mode, that mode's count),
        in mode order, drawn from `generator`."""
        counts = [tasks_per_mode] * self.modes if isinstance(tasks_per_mode, int) else list(tasks_per_mode)
        return Episode.cat([self._sample_mode(m, tasks, generator) for m, tasks in enumerate(counts)])

    def fixed_set(self, tasks_per_mode: int, seed: int) -> Episode:
        """A task set that depends only on (`tasks_per_mode`, `seed`) and the task distribution."""
        return self.sample(tasks_per_mode, torch.Generator().manual_seed(seed))

    def _sample_mode(self, m: int, tasks: int, generator: torch.Generator) -> Episode:
        mode, n, k, q = self.mode_list[m], self.ways, self.shots, self.queries
        classes = torch.rand(tasks, mode.num_classes, generator=generator).argsort(1)[:, :n]  # random order = labels
        table = mode.table[classes]  # [T, N, most]
        keys = torch.rand(table.shape, generator=generator).masked_fill(table < 0, 2.0)
        picked = table.gather(2, keys.argsort(2)[..., : k + q])  # distinct images of each class
        images = mode.images[picked]  # [T, N, K + Q, C, H, W]
        turns = mode.rotation[classes]
        for quarter in range(1, 4):
            if (hit := turns == quarter).any():
                images[hit] = torch.rot90(images[hit], quarter, dims=(-2, -1))
        x = images.float().div_(255).expand(*images.shape[:3], 3, *images.shape[4:])
        labels = torch.arange(n).view(1, n, 1)
        support_y = labels.expand(tasks, n, k).reshape(tasks, n * k)
        query_y = labels.expand(tasks, n, q).reshape(tasks, n * q)
        return Episode(x[:, :, :k].reshape(tasks, n * k, *x.shape[3:]), support_y,
                       x[:, :, k:].reshape(tasks, n * q, *x.shape[3:]), query_y,
                       torch.full((tasks,), m, dtype=torch.long), classes)
