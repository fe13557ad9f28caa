"""Meta-train, test, and write results.json and figures into the run directory.

    python -m mumo.train [modulation=film] [modes=2] [inner_steps=5] [trainer.max_steps=...]
    python -m mumo.train -m modulation=softmax,sigmoid,film
"""

from __future__ import annotations

import time
from pathlib import Path

import hydra
import lightning as L
from omegaconf import DictConfig, OmegaConf

from mumo.checkpoints import load_checkpoint
from mumo.cli import report_errors
from mumo.config import instantiate, portable_config
from mumo.outputs import close_loggers, write_outputs
from mumo.results import build_results
from mumo.schema import check_train
from mumo.threads import setup_threads


def build_trainer(cfg: DictConfig, **kwargs) -> L.Trainer:
    """The Trainer with the configured loggers and callbacks."""
    loggers = [instantiate(c) for c in (cfg.get("logger") or {}).values()]
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values()]
    return instantiate(cfg.trainer, logger=loggers or False, callbacks=callbacks, **kwargs)


def run(cfg: DictConfig) -> dict:
    """Train and test as configured; returns what was written to results.json."""
    check_train(cfg)
    threads = setup_threads(cfg.threads, cfg.data._target_, cfg.trainer.accelerator)
    if cfg.get("ckpt_path"):
        load_checkpoint(cfg.ckpt_path)  # a missing, truncated or foreign file fails here, in one line
    out = Path(cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = instantiate(cfg.data)
    module = instantiate(cfg.model, mode_names=datamodule.mode_names)
    module.save_hyperparameters({"config": portable_config(cfg)}, logger=False)
    trainer = build_trainer(cfg)
    for logger in trainer.loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))

    started = time.perf_counter()
    trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    train_seconds = time.perf_counter() - started
    trainer.test(module, datamodule=datamodule, verbose=False)

    results = build_results(cfg, module, trainer.global_step, module.test_metrics, threads,
                            train_seconds=round(train_seconds, 3))
    if trainer.is_global_zero:  # under DDP every process has the same results; one writes them
        write_outputs(out, results, module, datamodule, trainer.loggers)
    close_loggers(trainer.loggers)
    return results


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
@report_errors
def main(cfg: DictConfig) -> None:
    run(cfg)


if __name__ == "__main__":
    main()
