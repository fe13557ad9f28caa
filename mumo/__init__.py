"""mumo: Multimodal Model-Agnostic Meta-Learning (MuMoMAML / MMAML) on Lightning + Hydra."""

__version__ = "0.1.0"
