"""The classification family's LightningModule: cross-entropy, accuracy, and a figure of test
tasks (support images and query predictions)."""

from __future__ import annotations

from pathlib import Path

import torch

from mumo.core.engines import CrossEntropy
from mumo.core.supervised import SupervisedMetaLearner


class ClassificationMetaLearner(SupervisedMetaLearner):
    """Few-shot classification: cross-entropy in the inner and outer loop; query accuracy reported."""

    task, loss, metric = "classification", CrossEntropy(), "accuracy"

    def family_figures(self, datamodule, out: Path) -> dict[str, Path]:
        """Two test tasks per mode (support images, query predictions after modulation and after
        adaptation) and, for MMAML, the tSNE of the task embeddings of up to 1,000 test tasks."""
        from mumo.classification.plots import plot_tasks
        from mumo.plots import first_tasks_per_mode

        test_set = datamodule.test_set()
        shown = first_tasks_per_mode(test_set, 2)
        with torch.enable_grad():
            before, after = self.engine.predict_adapted(self.model, shown, shown.query_x)
        figures = {"tasks": out / "tasks.png"}
        plot_tasks(shown, before.argmax(-1), after.argmax(-1), self.mode_names, self.inner_loop.steps,
                   figures["tasks"])
        return figures | self.embedding_figure(test_set, out)
