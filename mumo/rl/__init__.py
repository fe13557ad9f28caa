"""Meta-reinforcement learning (paper §4.2): environments, rollouts, advantages, policy, ProMP.

Every environment module defines a gymnasium environment and an `RLEnvironment`
(`mumo.rl.tasks`): 2-D navigation (`navigation`), half-cheetah target speed / location
(`half_cheetah`).
"""
