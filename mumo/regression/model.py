"""The regression meta-model: base MLP(s) theta and a BiLSTM task encoder (paper §3, §4.1)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from mumo.core.meta_model import MetaModel
from mumo.core.mlp import MLP
from mumo.core.modulation import get_modulation
from mumo.regression.encoder import LSTMTaskEncoder


class RegressionMetaModel(MetaModel):
    """MAML (modulation 'none'), MuMoMAML (softmax / sigmoid / film) or Multi-MAML (per_mode_nets)
    on the paper's 1-100-100-100-1 ReLU MLP, with a BiLSTM over the K support pairs.

    Args:
        modulation: 'none', 'softmax', 'sigmoid' or 'film'.
        modulated_layers: hidden layers (0-based) that receive a tau; None means all of them.
        bias_transform: size of the adapted bias-transformation vector (MAML; 0 = off).
        per_mode_nets: Multi-MAML (GT) with this many modes: one base net per mode, picked by the
            task's ground-truth mode label; each mode also gets a non-adapted N(0, 1)
            bias-transformation row of size `bias_transform`. 0 = off.
    """

    def __init__(
        self,
        in_features: int = 1,
        out_features: int = 1,
        hidden_sizes: Sequence[int] = (100, 100, 100),
        modulation: str = "film",
        modulated_layers: Sequence[int] | None = None,
        bias_transform: int = 0,
        per_mode_nets: int = 0,
        encoder_hidden_size: int = 40,
        encoder_layers: int = 2,
        init_std: float = 0.01,
    ) -> None:
        hidden_sizes = list(hidden_sizes)
        modulator = get_modulation(modulation)
        if modulated_layers is None:
            modulated_layers = range(len(hidden_sizes)) if modulator is not None else []
        modulated_layers = sorted(set(modulated_layers))
        context = bias_transform if per_mode_nets else 0
        nets = [MLP(in_features, hidden_sizes, out_features, modulator, modulated_layers,
                    bias_transform=0 if per_mode_nets else bias_transform, context_size=context, init_std=init_std)
                for _ in range(per_mode_nets or 1)]
        mode_bias = torch.randn(per_mode_nets, context) if context else None
        encoder = None
        if modulator is not None:
            encoder = LSTMTaskEncoder(in_features + out_features, encoder_hidden_size, encoder_layers)
        super().__init__(nets, modulation, encoder, mode_bias, per_mode=per_mode_nets > 0)
