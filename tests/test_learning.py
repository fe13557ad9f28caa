"""Learning works (slow: `make test-slow`): a short FiLM run beats MAML after adaptation."""

from pathlib import Path

import pytest
from helpers import compose_train

from mumo.train import run

pytestmark = pytest.mark.slow


def test_film_beats_maml_after_a_short_training_run(tmp_path: Path):
    common = ["trainer.max_steps=1500", "val_every=1500", "data.test_tasks_per_mode=500", "logger=none"]
    film = run(compose_train(tmp_path / "film", "modulation=film", *common, fast=False))["test"]
    maml = run(compose_train(tmp_path / "maml", "modulation=none", *common, fast=False))["test"]
    assert film["post_adaptation_mse"] < maml["post_adaptation_mse"]
    assert maml["post_modulation_mse"] == pytest.approx(16.2, rel=0.15)  # MAML's prior predicts ~0
    assert maml["post_adaptation_mse"] < 0.5 * maml["post_modulation_mse"]  # adaptation helps
