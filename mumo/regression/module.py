"""The regression family's LightningModule: MSE, and the fits figure (paper §4.1)."""

from __future__ import annotations

from pathlib import Path

from mumo.core.engines import MSE
from mumo.core.supervised import SupervisedMetaLearner


class RegressionMetaLearner(SupervisedMetaLearner):
    """Few-shot regression: inner and outer loss and the reported metric are the query MSE."""

    task, loss, metric = "regression", MSE(), "mse"

    def family_figures(self, datamodule, out: Path) -> dict[str, Path]:
        """Fits of a few test tasks per mode (Figure 2a/b) and, for MuMoMAML, the tSNE of the task
        embeddings of up to 1,000 test tasks (Figure 2c)."""
        from mumo.regression.plots import plot_fits

        test_set = datamodule.test_set()
        figures = {"fits": out / "fits.png"}
        plot_fits(self, datamodule.tasks, test_set, figures["fits"])
        return figures | self.embedding_figure(test_set, out)
