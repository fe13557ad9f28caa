"""The reinforcement-learning task family: environments, returns and advantages."""

from mumo.rl.navigation import BatchedNavigation, GoalDistribution, PointNavigationEnv, PolicyScaleActions

__all__ = ["BatchedNavigation", "GoalDistribution", "PointNavigationEnv", "PolicyScaleActions"]
