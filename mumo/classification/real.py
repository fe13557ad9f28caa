"""Loaders for the paper's five datasets from their standard on-disk layouts (nothing is downloaded).

    data.datasets=[omniglot,miniimagenet,fc100,cub,aircraft] data.real_root=/path/to/datasets

Each loader reads one dataset under `real_root` and returns it in the format of the offline packs
(uint8 images [n, C, S, S] at `image_size`, base-class labels, class names, the split of every
class: 0 meta-train, 1 meta-val, 2 meta-test), so that episodes are built the same way.

| dataset | expected layout under real_root | classes and split |
|---|---|---|
| omniglot | `omniglot-py/images_{background,evaluation}/<alphabet>/<character>/*.png` (torchvision's) | characters in sorted order: the first 1,100 train (the original's cut), the next 100 val, the rest test; strokes inverted to 1 on 0; every quarter turn a class |
| miniimagenet | `miniimagenet/{train,val,test}/<wnid>/*.jpg` (Ravi & Larochelle) | 64 / 16 / 20 |
| fc100 | `cifar-100-python/{train,test,meta}` (the CIFAR-100 python archive) | by superclass, train and test pooled: 60 / 20 / 20 (FC100) |
| cub | `CUB_200_2011/images/<class>/*.jpg` | sorted classes shuffled with seed 123: 140 / 30 / 30 |
| aircraft | `fgvc-aircraft-2013b/data/{variants.txt,images_variant_{trainval,test}.txt,images/*.jpg}` | variants shuffled with seed 123: 70 / 15 / 15 |

The original listed CUB's class folders with `os.listdir` (unordered, so its split depended on
the file system); the folders are sorted here before the seeded shuffle.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from mumo.classification.offline import resize
from mumo.errors import ConfigError

FC100_SUPERCLASSES = {0: (1, 2, 3, 4, 5, 6, 9, 10, 15, 17, 18, 19), 1: (8, 11, 13, 16), 2: (0, 7, 12, 14)}
OMNIGLOT_TRAIN, OMNIGLOT_VAL = 1100, 100


def _missing(dataset: str, root: Path, layout: str) -> ConfigError:
    return ConfigError("data.real_root", f"{dataset} not found under {root}: expected {layout}")


def _decode(path: Path, size: int, gray: bool) -> torch.Tensor:
    """An image file -> uint8 [C, size, size] (antialiased resize; gray: 1 channel, else RGB)."""
    from torchvision.io import ImageReadMode, decode_image

    image = decode_image(str(path), ImageReadMode.GRAY if gray else ImageReadMode.RGB)
    return resize(image.unsqueeze(0), size)[0]


def _pack(images: list[torch.Tensor], labels: list[int], names: list[str], split: np.ndarray,
          rotations: bool = False) -> dict:
    return {"images": torch.stack(images).numpy(), "labels": np.asarray(labels), "names": np.asarray(names),
            "split": split, "rotations": rotations}


def _class_folders(classes: list[Path], size: int, gray: bool = False) -> tuple[list, list]:
    images, labels = [], []
    for label, folder in enumerate(classes):
        for path in sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png")):
            images.append(_decode(path, size, gray)), labels.append(label)
    return images, labels


def _seeded_split(count: int, fractions: tuple[float, float] = (0.7, 0.85), seed: int = 123) -> np.ndarray:
    """The original's split: classes shuffled with RandomState(seed), cut at 70% and 85%."""
    order = np.random.RandomState(seed).permutation(count)
    split = np.full(count, 2)
    split[order[: int(round(fractions[0] * count))]] = 0
    split[order[int(round(fractions[0] * count)): int(round(fractions[1] * count))]] = 1
    return split


def omniglot(root: Path, size: int) -> dict:
    base = root / "omniglot-py"
    characters = sorted(c for part in ("images_background", "images_evaluation")
                        for alphabet in sorted((base / part).glob("*")) if alphabet.is_dir()
                        for c in sorted(alphabet.iterdir()) if c.is_dir())
    if not characters:
        raise _missing("omniglot", root, "omniglot-py/images_{background,evaluation}/<alphabet>/<character>/*.png")
    images, labels = _class_folders(characters, size, gray=True)
    images = [255 - image for image in images]  # strokes 1, background 0
    split = np.full(len(characters), 2)
    split[:OMNIGLOT_TRAIN], split[OMNIGLOT_TRAIN: OMNIGLOT_TRAIN + OMNIGLOT_VAL] = 0, 1
    names = [f"{c.parent.name}/{c.name}" for c in characters]
    return _pack(images, labels, names, split, rotations=True)


def miniimagenet(root: Path, size: int) -> dict:
    base = root / "miniimagenet"
    folders = [(s, c) for s, name in enumerate(("train", "val", "test"))
               for c in sorted((base / name).glob("*")) if c.is_dir()]
    if not folders:
        raise _missing("miniimagenet", root, "miniimagenet/{train,val,test}/<wnid>/*.jpg")
    images, labels = _class_folders([c for _, c in folders], size)
    return _pack(images, labels, [c.name for _, c in folders], np.asarray([s for s, _ in folders]))


def fc100(root: Path, size: int) -> dict:
    base = root / "cifar-100-python"
    if not all((base / f).exists() for f in ("train", "test", "meta")):
        raise _missing("fc100", root, "cifar-100-python/{train,test,meta} (the CIFAR-100 python version)")
    parts = [pickle.load((base / f).open("rb"), encoding="latin1") for f in ("train", "test")]
    data = np.concatenate([p["data"] for p in parts]).reshape(-1, 3, 32, 32)
    fine = np.concatenate([p["fine_labels"] for p in parts])
    coarse = np.concatenate([p["coarse_labels"] for p in parts])
    names = pickle.load((base / "meta").open("rb"), encoding="latin1")["fine_label_names"]
    superclass_of = dict(zip(fine.tolist(), coarse.tolist()))
    split_of = {c: s for s, supers in FC100_SUPERCLASSES.items() for c in supers}
    split = np.asarray([split_of.get(superclass_of.get(f), 2) for f in range(len(names))])
    images = resize(torch.from_numpy(data), size).numpy()
    return {"images": images, "labels": fine, "names": np.asarray(names), "split": split, "rotations": False}


def cub(root: Path, size: int) -> dict:
    classes = sorted(c for c in (root / "CUB_200_2011" / "images").glob("*") if c.is_dir())
    if not classes:
        raise _missing("cub", root, "CUB_200_2011/images/<class>/*.jpg")
    images, labels = _class_folders(classes, size)
    return _pack(images, labels, [c.name for c in classes], _seeded_split(len(classes)))


def aircraft(root: Path, size: int) -> dict:
    base = root / "fgvc-aircraft-2013b" / "data"
    if not (base / "variants.txt").exists():
        raise _missing("aircraft", root, "fgvc-aircraft-2013b/data/{variants.txt,images_variant_*.txt,images/}")
    variants = [line.strip() for line in (base / "variants.txt").read_text().splitlines() if line.strip()]
    index = {v: i for i, v in enumerate(variants)}
    images, labels = [], []
    for listing in ("images_variant_trainval.txt", "images_variant_test.txt"):
        for line in (base / listing).read_text().splitlines():
            if line.strip():
                image_id, variant = line.strip().split(" ", 1)
                images.append(_decode(base / "images" / f"{image_id}.jpg", size, gray=False))
                labels.append(index[variant])
    return _pack(images, labels, variants, _seeded_split(len(variants)))


LOADERS: dict[str, Callable[[Path, int], dict]] = {
    "omniglot": omniglot, "miniimagenet": miniimagenet, "fc100": fc100, "cub": cub, "aircraft": aircraft,
}
