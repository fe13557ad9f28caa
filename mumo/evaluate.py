"""Test any checkpoint on the fixed test set; write results.json and figures.

    python -m mumo.evaluate ckpt_path=outputs/<date>/<time> [inner_steps=10]
    python -m mumo.evaluate ckpt_path=outputs/<date>/<time>/checkpoints/last.ckpt
"""

from __future__ import annotations

import hydra
import lightning as L
from omegaconf import DictConfig

from mumo.checkpoints import find_checkpoint, load_checkpoint, restore_config, restore_run
from mumo.cli import report_errors
from mumo.errors import output_directory
from mumo.outputs import write_outputs
from mumo.provenance import code_version, provenance
from mumo.results import build_results
from mumo.schema import check_evaluate, check_train
from mumo.threads import check_device, setup_threads

# evaluate.yaml key -> key of the stored training config it replaces
OVERRIDES = {
    "inner_steps": "inner_steps",
    "engine": "engine",
    "weight_updates": "weight_updates",
    "test_tasks_per_mode": "data.test_tasks_per_mode",
    "accelerator": "trainer.accelerator",
}


def evaluate(cfg: DictConfig) -> dict:
    """Rebuild the run stored in `cfg.ckpt_path`, test it, and write its results."""
    check_evaluate(cfg)
    check_device(cfg.accelerator, "accelerator")
    code = code_version()  # before any work: the tree may change while the run goes on
    path = find_checkpoint(cfg.ckpt_path).resolve()
    checkpoint = load_checkpoint(path)
    overrides = {target: cfg[key] for key, target in OVERRIDES.items() if cfg.get(key) is not None}
    overrides["threads"] = cfg.threads  # this process's setting, not the training run's
    run_cfg = restore_config(checkpoint, overrides)
    check_train(run_cfg)
    out = output_directory(cfg.paths.output_dir, "paths.output_dir")  # before building data and model
    threads = setup_threads(cfg.threads, run_cfg.data._target_, cfg.accelerator)
    run_cfg.paths.output_dir = cfg.paths.output_dir  # results.json records where this evaluation wrote
    datamodule, module = restore_run(run_cfg, checkpoint)
    trainer = L.Trainer(accelerator=cfg.accelerator, devices=1, precision=run_cfg.trainer.get("precision"),
                        logger=False, inference_mode=False, enable_model_summary=False)
    trainer.test(module, datamodule=datamodule, verbose=False)

    origin = provenance("evaluated", module.clock, str(path), int(checkpoint["global_step"]))
    results = build_results(run_cfg, module, checkpoint["global_step"], module.test_metrics, threads, origin, code)
    write_outputs(out, results, module, datamodule)
    return results


@hydra.main(version_base="1.3", config_path="../conf", config_name="evaluate")
@report_errors
def main(cfg: DictConfig) -> None:
    evaluate(cfg)


if __name__ == "__main__":
    main()
