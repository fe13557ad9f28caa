"""What a finished run leaves behind: results.json, figures, and the same in the loggers."""

from __future__ import annotations

import logging
from pathlib import Path

from lightning.pytorch.loggers import Logger, TensorBoardLogger, WandbLogger

from mumo.core.learner import Learner
from mumo.plots import plot_adaptation_curve, plot_training_curve
from mumo.results import format_table, write_json

log = logging.getLogger(__name__)


def save_figures(module: Learner, datamodule, results: dict, out: Path) -> dict[str, Path]:
    """Per-run figures: the adaptation curve and the training curve of every family, then the
    family's own (`Learner.family_figures`; regression: fits and the tSNE of task embeddings)."""
    figures = {"adaptation_curve": out / "adaptation_curve.png", "training_curve": out / "training_curve.png"}
    plot_adaptation_curve(results, figures["adaptation_curve"])
    plot_training_curve(results, figures["training_curve"])
    return figures | module.family_figures(datamodule, out)


def results_rows(results: dict) -> tuple[list[str], list[list]]:
    """The test metrics as a table: one row for all tasks and one per mode."""
    metric = results.get("metric", "mse")
    columns = ["tasks", "num_tasks", f"post_modulation_{metric}", "post_modulation_ci95", f"post_adaptation_{metric}",
               "post_adaptation_ci95"]
    test = results["test"]
    groups = [("all", test), *test["per_mode"].items()]
    return columns, [[name, *(m[c] for c in columns[1:])] for name, m in groups]


def log_to_loggers(loggers: list[Logger], figures: dict[str, Path], results: dict, step: int) -> None:
    """Figures as images and the results table, for loggers that can show them."""
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            import wandb

            columns, rows = results_rows(results)
            logger.experiment.log(
                {**{f"figures/{k}": wandb.Image(str(p)) for k, p in figures.items()},
                 "test/results": wandb.Table(columns=columns, data=rows)},
            )
            logger.experiment.summary.update({f"results/{k}": v for k, v in results.items() if k != "test"})
        elif isinstance(logger, TensorBoardLogger):
            import matplotlib.image

            for name, path in figures.items():
                logger.experiment.add_image(f"figures/{name}", matplotlib.image.imread(path), step, dataformats="HWC")


def write_outputs(
    out: Path, results: dict, module: Learner, datamodule, loggers: list[Logger] = ()
) -> dict[str, Path]:
    """Write results.json and the figures into `out`, log them, and print the results table."""
    write_json(out / "results.json", results)
    figures = save_figures(module, datamodule, results, out)
    log_to_loggers(list(loggers), figures, results, results["steps"])
    print(format_table(results))
    log.info("wrote %s and %s", out / "results.json", ", ".join(p.name for p in figures.values()))
    return figures


def close_loggers(loggers: list[Logger]) -> None:
    """Finish W&B runs (the next job of a sweep starts a new one) and say how to upload offline runs."""
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            run = logger.experiment
            offline = run.settings.mode == "offline" if hasattr(run, "settings") else False
            run_dir = Path(run.dir).parent
            run.finish()
            if offline:
                print(f"W&B run saved offline in {run_dir}; upload it with: wandb sync {run_dir}")
