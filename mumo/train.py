"""Meta-train, test, and write results.json and figures into the run directory.

    python -m mumo.train [modulation=film] [modes=2] [inner_steps=5] [trainer.max_steps=...]
    python -m mumo.train -m modulation=softmax,sigmoid,film
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import hydra
import lightning as L
from omegaconf import DictConfig, OmegaConf

from mumo.checkpoints import check_weights_fit, find_checkpoint, load_checkpoint
from mumo.cli import report_errors
from mumo.config import instantiate, portable_config
from mumo.errors import output_directory
from mumo.outputs import close_loggers, write_outputs
from mumo.provenance import code_version, provenance
from mumo.results import build_results
from mumo.schema import check_train
from mumo.threads import check_device, setup_threads

log = logging.getLogger(__name__)


def build_trainer(cfg: DictConfig, **kwargs) -> L.Trainer:
    """The Trainer with the configured loggers and callbacks."""
    loggers = [instantiate(c) for c in (cfg.get("logger") or {}).values()]
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values()]
    return instantiate(cfg.trainer, logger=loggers or False, callbacks=callbacks, **kwargs)


def run(cfg: DictConfig) -> dict:
    """Train (or resume) and test as configured; returns what was written to results.json."""
    check_train(cfg)
    code = code_version()  # before any work: the tree may change while the run goes on
    check_device(cfg.trainer.accelerator, "trainer.accelerator")
    threads = setup_threads(cfg.threads, cfg.data._target_, cfg.trainer.accelerator)
    resume, checkpoint = None, None
    if cfg.get("ckpt_path"):  # a missing, truncated or foreign file fails here, in one line
        path = find_checkpoint(cfg.ckpt_path)
        checkpoint = load_checkpoint(path)
        resume = {"checkpoint": str(path.resolve()), "step": int(checkpoint["global_step"])}
    out = output_directory(cfg.paths.output_dir, "paths.output_dir")
    if resume:
        log.info("resuming from step %d of %s; writing into %s", resume["step"], resume["checkpoint"], out)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = instantiate(cfg.data)
    module = instantiate(cfg.model, **datamodule.learner_inputs())
    if checkpoint is not None:
        check_weights_fit(module, checkpoint["state_dict"], "this run",
                          advice=": resume with the settings it was trained with")
        checkpoint = None  # Lightning reads the file itself when it fits: no second copy held meanwhile
    module.save_hyperparameters({"config": portable_config(cfg)}, logger=False)
    trainer = build_trainer(cfg)
    for logger in trainer.loggers:
        if resume and hasattr(logger, "continue_from"):
            logger.continue_from(resume["step"])
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))

    trainer.fit(module, datamodule=datamodule, ckpt_path=resume["checkpoint"] if resume else None)
    trainer.test(module, datamodule=datamodule, verbose=False)

    origin = provenance("resumed", module.clock, **resume) if resume else provenance("trained", module.clock)
    results = build_results(cfg, module, trainer.global_step, module.test_metrics, threads, origin, code,
                            train_seconds=module.clock.this_run_seconds)
    if trainer.is_global_zero:  # under DDP every process has the same results; one writes them
        keep_previous_results(out)
        write_outputs(out, results, module, datamodule, trainer.loggers)
    close_loggers(trainer.loggers)
    return results


def keep_previous_results(out: Path) -> None:
    """A resumed run that had already finished keeps its earlier results as results-<steps>.json."""
    previous = out / "results.json"
    if previous.is_file():
        steps = json.loads(previous.read_text()).get("steps", "earlier")
        previous.rename(out / f"results-{steps}.json")


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
@report_errors
def main(cfg: DictConfig) -> None:
    run(cfg)


if __name__ == "__main__":
    main()
