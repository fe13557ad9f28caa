"""Networks: base MLP, modulation, task encoder, and the combined meta-model."""

from mumo.models.meta_model import Condition, MetaModel
from mumo.models.mlp import MLP, Params
from mumo.models.modulation import MODULATIONS, get_modulation

__all__ = ["Condition", "MetaModel", "MLP", "MODULATIONS", "Params", "get_modulation"]
