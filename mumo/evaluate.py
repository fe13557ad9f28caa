"""Test any checkpoint on the fixed test set; write results.json and fits.png.

    python -m mumo.evaluate ckpt_path=outputs/<date>/<time>/checkpoints/last.ckpt [inner_steps=10]
"""

from __future__ import annotations

from pathlib import Path

import hydra
import lightning as L
from omegaconf import DictConfig, OmegaConf

from mumo.checkpoints import load_checkpoint, stored_config
from mumo.cli import report_errors
from mumo.config import instantiate
from mumo.plots import plot_fits
from mumo.results import build_results, format_table, write_json

# evaluate.yaml key -> key of the stored training config it replaces
OVERRIDES = {"inner_steps": "inner_steps", "engine": "engine", "test_tasks_per_mode": "data.test_tasks_per_mode"}


def evaluate(cfg: DictConfig) -> dict:
    """Rebuild the run stored in `cfg.ckpt_path`, test it, and write its results."""
    checkpoint = load_checkpoint(cfg.ckpt_path)
    run_cfg = stored_config(checkpoint)
    for key, target in OVERRIDES.items():
        if cfg.get(key) is not None:
            OmegaConf.update(run_cfg, target, cfg[key])
    out = Path(cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)

    datamodule = instantiate(run_cfg.data)
    module = instantiate(run_cfg.model, mode_names=datamodule.mode_names)
    module.load_state_dict(checkpoint["state_dict"])
    trainer = L.Trainer(
        accelerator=cfg.accelerator, devices=1, logger=False, inference_mode=False, enable_model_summary=False
    )
    trainer.test(module, datamodule=datamodule, verbose=False)

    results = build_results(
        run_cfg, module, checkpoint["global_step"], module.test_metrics, checkpoint=str(Path(cfg.ckpt_path).resolve())
    )
    write_json(out / "results.json", results)
    plot_fits(module, datamodule.tasks, datamodule.test_set(), out / "fits.png")
    print(format_table(results))
    return results


@hydra.main(version_base="1.3", config_path="../conf", config_name="evaluate")
@report_errors
def main(cfg: DictConfig) -> None:
    evaluate(cfg)


if __name__ == "__main__":
    main()
