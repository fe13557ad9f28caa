"""LightningDataModule for multimodal few-shot classification: the offline benchmark, or the
paper's datasets from a local root.

Training draws fresh balanced meta-batches from the meta-train classes forever (a seeded
stream); validation and test are fixed task sets of the meta-val and meta-test classes, built
from their own seeds. The offline modes are built on first use (`mumo.classification.offline`);
the paper's datasets are read from `real_root` (`mumo.classification.real`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from mumo.classification.offline import MODES, SIZE, build, resize
from mumo.classification.real import LOADERS
from mumo.classification.tasks import ImageMode, ImageTasks
from mumo.core.episode import Episode
from mumo.core.stream import TaskDataModule
from mumo.errors import ConfigError

# The paper's mixes of 2, 3 and 5 modes: with the offline benchmark's datasets, or the paper's own
# (Omniglot + mini-ImageNet, + FC100, + CUB + FGVC-Aircraft).
MIXES = {"offline": {2: ["digits", "emoji"], 3: ["digits", "fashion", "emoji"], 5: list(MODES)},
         "paper": {modes: list(LOADERS)[:modes] for modes in (2, 3, 5)}}


def mix_datasets(mix: str, modes: int, datasets: list[str] | None = None) -> list[str]:
    """A run's datasets in mode order: `datasets` if it names them, else the `modes`-mode mix of `mix`."""
    if mix not in MIXES:
        raise ConfigError("data.mix", f"must be one of {', '.join(MIXES)} (got {mix})")
    if datasets is not None:
        return list(datasets)
    if modes not in MIXES[mix]:
        raise ConfigError("modes", f"the {mix} mixes hold 2, 3 or 5 modes unless data.datasets names them "
                                   f"(got {modes})")
    return MIXES[mix][modes]


class ClassificationDataModule(TaskDataModule):
    """N-way K-shot tasks over the datasets of `datasets` (default: the `modes`-mode mix).

    Args:
        root: where the offline packs are (built there on first use).
        modes: 2, 3 or 5: the paper's mixes of `mix` (`MIXES`), unless `datasets` names them.
        mix: "offline" (the packs under `root`) or "paper" (the paper's datasets, from `real_root`).
        datasets: the modes by name: offline (`MODES`) or the paper's (`LOADERS`), or None.
        real_root: where the paper's datasets are, in their standard layouts.
        image_size: the common side length (the offline packs are 32 px; the paper used 84).
        ways, shots, queries: N, K and Q (queries per class).
        meta_batch_size, seed, val/test sets: as every family's (`TaskDataModule`).
        train_tasks_per_mode: the tasks of each mode in a training meta-batch, in mode order, in
            place of the balanced meta_batch_size / modes each (their sum is the meta-batch size);
            for the authors' per-dataset meta-batches of Multi-MAML (Omniglot 5-way: 10, else 4).
    """

    def __init__(self, root: str = "data/offline", modes: int = 2, mix: str = "offline",
                 datasets: list[str] | None = None,
                 real_root: str | None = None, image_size: int = SIZE, ways: int = 5,
                 shots: int = 1, queries: int = 1, meta_batch_size: int = 10, seed: int = 0,
                 val_tasks_per_mode: int = 50, test_tasks_per_mode: int = 200, val_seed: int = 1_000_003,
                 test_seed: int = 2_000_003, eval_batch_size: int = 20,
                 train_tasks_per_mode: list[int] | None = None) -> None:
        names = mix_datasets(mix, modes, datasets)
        packs = {}
        offline = tuple(n for n in names if n not in LOADERS)
        if offline:
            for name, path in build(Path(root), offline, log=lambda _: None).items():
                packs[name] = dict(np.load(path))
                if image_size != SIZE:
                    packs[name]["images"] = resize(torch.from_numpy(packs[name]["images"]), image_size).numpy()
        for name in (n for n in names if n in LOADERS):
            if real_root is None:
                raise ConfigError("data.real_root", f"{name} is read from a local copy: set data.real_root")
            packs[name] = LOADERS[name](Path(real_root), image_size)
        self.splits = {split: ImageTasks([ImageMode.from_pack(n, packs[n], split) for n in names], ways, shots, queries)
                       for split in ("train", "val", "test")}
        if train_tasks_per_mode is not None and len(train_tasks_per_mode) != len(names):
            raise ConfigError("data.train_tasks_per_mode", f"needs one count per mode: {len(names)} "
                                                           f"(got {len(train_tasks_per_mode)})")
        super().__init__(self.splits["train"], len(names), meta_batch_size, seed, val_tasks_per_mode,
                         test_tasks_per_mode, val_seed, test_seed, eval_batch_size, train_tasks_per_mode)

    def val_set(self) -> Episode:
        return self.splits["val"].fixed_set(self.val_tasks_per_mode, self.val_seed)

    def test_set(self) -> Episode:
        return self.splits["test"].fixed_set(self.test_tasks_per_mode, self.test_seed)
