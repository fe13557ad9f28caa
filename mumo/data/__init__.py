"""Episodic task data: the batch container, task families and data modules."""

from mumo.data.episode import Episode
from mumo.data.functions import FAMILIES, FunctionFamily, RegressionTasks
from mumo.data.regression import RegressionDataModule

__all__ = ["Episode", "FAMILIES", "FunctionFamily", "RegressionDataModule", "RegressionTasks"]
