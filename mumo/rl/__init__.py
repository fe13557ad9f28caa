"""Meta-reinforcement learning (paper §4.2): environments, rollouts, advantages, policy, ProMP."""

from mumo.rl.navigation import BatchedNavigation, GoalDistribution, PointNavigationEnv, PolicyScaleActions

__all__ = ["BatchedNavigation", "GoalDistribution", "PointNavigationEnv", "PolicyScaleActions"]
