"""LightningModule for meta-RL: ProMP with MuMoMAML's stage order (paper §3.2, §4.2).

Each training step samples the meta-batch's stages with the current policy (see
`mumo.rl.promp`) and takes `promp_steps` Adam steps on the ProMP objective rebuilt from them.
Evaluation measures every test task's mean return before modulation, after modulation (an extra
batch with tau applied and no gradient step) and after each of `eval_steps` gradient steps.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from mumo.core.learner import Learner
from mumo.errors import ConfigError
from mumo.rl.policy import MetaPolicy
from mumo.rl.promp import ProMP, Stages, sample_stages
from mumo.rl.tasks import RLEnvironment, TaskBatch


class RLMetaLearner(Learner):
    """Meta-trains the policy theta and the task encoder + heads jointly.

    Args:
        policy: the policy and, for MuMoMAML, its encoder and heads.
        env: the environment (given by the data module: `RLDataModule.learner_inputs`).
        algorithm: ProMP (inner step, clipped objective, KL penalty).
        rollouts, horizon: episodes per task and stage, and their length.
        policy_scale: the policy acts in [-policy_scale, policy_scale] per axis (see `policy_to_env`).
        promp_steps: Adam steps per meta-iteration on the same samples.
        eval_steps: gradient steps at evaluation (default: the training K).
        seed: seed of the rollouts' noise during training (saved in checkpoints: exact resume);
            evaluation uses `eval_seed`, the same for every run and method.
    """

    metric = "return"

    def __init__(self, policy: MetaPolicy, algorithm: ProMP, env: RLEnvironment, rollouts: int = 20, horizon: int = 100,
                 policy_scale: float = 10.0, promp_steps: int = 5, lr: float = 1e-3, lr_schedule: str = "constant",
                 eval_steps: int | None = None, seed: int = 0, eval_seed: int = 3_000_017,
                 mode_names: list[str] | None = None) -> None:
        super().__init__(lr, lr_schedule, mode_names or ["0"])
        self.automatic_optimization = False
        for key, wanted, got in (("observation_size", env.observation_size, policy.observation_size),
                                 ("action_size", env.action_size, policy.action_size)):
            if got != wanted:
                raise ConfigError(f"model.policy.{key}", f"{env.name} has {wanted} (got {got})")
        if algorithm.after_modulation_weight and policy.encoder is None:
            raise ConfigError("model.algorithm.after_modulation_weight",
                              f"trains the policy modulated by tau; {policy.method} has no task encoder")
        self.policy, self.algorithm, self.env = policy, algorithm, env
        self.rollouts, self.horizon, self.policy_scale = rollouts, horizon, policy_scale
        self.promp_steps = promp_steps
        self.eval_steps = algorithm.inner_loop.steps if eval_steps is None else eval_steps
        self.generator = torch.Generator().manual_seed(seed)
        self.eval_seed = eval_seed

    def describe(self) -> dict:
        loop = self.algorithm.inner_loop
        return {"method": self.policy.method, "modulation": self.policy.modulation,
                "mode_names": self.mode_names, "inner_steps": self.eval_steps, "inner_lr": loop.lr,
                "first_order": loop.first_order, "meta_lr": self.lr, "lr_schedule": self.lr_schedule,
                "engine": "batched", "metric": self.metric, "task": self.env.name}

    def parameter_groups(self) -> list[dict]:
        groups = [{"params": self.policy.base_parameters(), "name": "policy"}]
        if encoder := self.policy.encoder_parameters():
            groups.append({"params": encoder, "name": "encoder"})
        return groups

    def _stages(self, batch: TaskBatch, generator: torch.Generator, **kwargs) -> Stages:
        return sample_stages(self.algorithm, self.policy, self.env, batch, self.rollouts, self.horizon,
                             self.policy_scale, generator, **kwargs)

    def training_step(self, batch: TaskBatch, batch_idx: int) -> Tensor:
        stages = self._stages(batch, self.generator, after_modulation=self.algorithm.after_modulation_weight > 0)
        returns = torch.stack([stage.returns.mean() for stage in stages.batches])  # of the policy before this update
        self.record_train(returns[-1])
        optimizer = self.optimizers()
        for k in range(self.promp_steps):
            loss = self.algorithm.meta_loss(self.policy, stages.batches, stages.modulated)
            optimizer.zero_grad()
            self.manual_backward(loss)
            # One meta-iteration is one trainer step: the first promp_steps - 1 Adam steps go to
            # the torch optimizer directly, past Lightning's step counter.
            (optimizer if k == self.promp_steps - 1 else optimizer.optimizer).step()
        if (scheduler := self.lr_schedulers()) is not None:
            scheduler.step()
        self.log_dict({f"train/return_stage_{j}": r for j, r in enumerate(returns)})
        if stages.modulated is not None:
            self.log("train/return_after_modulation", stages.modulated.returns.mean())
        self.log("train/return", returns[-1], prog_bar=True)
        self.log("train/meta_loss", loss.detach())
        return loss.detach()

    def evaluate_batch(self, batch: TaskBatch, batch_idx: int) -> tuple[Tensor, Tensor, Tensor]:
        """Mean returns: after modulation and after 1..eval_steps steps [S + 1, T], and before
        modulation [T]. The rollouts' noise is seeded by the batch's index in the fixed evaluation
        set: the same for every run and method."""
        generator = torch.Generator().manual_seed(self.eval_seed + batch_idx)
        with torch.enable_grad():
            stages = self._stages(batch, generator, steps=self.eval_steps, after_modulation=True).timeline()
        returns = torch.stack([stage.returns.mean(1) for stage in stages])
        return returns[1:], batch.mode, returns[0]

    def family_figures(self, datamodule, out: Path) -> dict[str, Path]:
        """One rollout of the first two test tasks of every mode at every stage, drawn by the
        environment (Figure 3d for navigation) and, for MuMoMAML, the tSNE of the task embeddings
        of the test tasks (Figure 4)."""
        from mumo.plots import first_tasks_per_mode, plot_task_embeddings

        test = datamodule.test_set()
        shown = first_tasks_per_mode(test, 2)
        with torch.enable_grad():
            stages = self._stages(shown, torch.Generator().manual_seed(self.eval_seed), steps=self.eval_steps,
                                  after_modulation=True).timeline()
        observations = [stage.observations[:, 0] for stage in stages]  # each task's first rollout [T, H, d]
        names = ["before modulation", "after modulation"] + [f"after {k} step{'s' * (k > 1)}"
                                                              for k in range(1, self.eval_steps + 1)]
        figures = {"rollouts": out / "rollouts.png"}
        self.env.plot_rollouts(shown, observations, names, figures["rollouts"])
        if self.policy.encoder is not None:
            figures["task_embeddings"] = out / "task_embeddings.png"
            first = self._stages(test, torch.Generator().manual_seed(self.eval_seed), steps=0).batches[0]
            with torch.no_grad():
                embedding = self.policy.embed(first.encoder_input())
            plot_task_embeddings(embedding, test.mode, self.mode_names,
                                 f"task embeddings of {test.num_tasks} test tasks ({self.policy.modulation})",
                                 figures["task_embeddings"])
        return figures

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["rollout_generator"] = self.generator.get_state()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        super().on_load_checkpoint(checkpoint)
        if "rollout_generator" in checkpoint:
            self.generator.set_state(checkpoint["rollout_generator"])
