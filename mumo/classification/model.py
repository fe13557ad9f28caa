"""The classification meta-model: conv task network(s) theta and a conv task encoder (paper §B;
MMAML-Classification's `--mmaml-model`).

The encoder embeds every support image with its own 4-block conv net (BatchNorm with affine
parameters, statistics of the task's support images), projects it (256 -> 128, ReLU) and
averages over the support set: v [T, 128]. As the original, it reads the support images only,
not their labels. The core `MetaModel` adds one linear head per conv block (tau per channel).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from mumo.core.convnet import ConvNet, batch_norm, conv
from mumo.core.meta_model import MetaModel
from mumo.core.modulation import get_modulation


class ConvTaskEncoder(nn.Module):
    """Support images [T, NK, C, H, W] -> task embeddings [T, embedding_size] (mean over images)."""

    def __init__(self, in_channels: int = 3, channels: Sequence[int] = (32, 64, 128, 256),
                 embedding_size: int = 128) -> None:
        super().__init__()
        sizes = [in_channels, *channels]
        self.convs = nn.ModuleList(nn.Conv2d(a, b, 3, stride=2, padding=1) for a, b in zip(sizes[:-1], sizes[1:]))
        self.scales = nn.ParameterList(nn.Parameter(torch.ones(c)) for c in channels)
        self.shifts = nn.ParameterList(nn.Parameter(torch.zeros(c)) for c in channels)
        self.projection = nn.Linear(sizes[-1], embedding_size)
        self.embedding_size = embedding_size

    def forward(self, support_x: Tensor, support_y: Tensor | None = None) -> Tensor:
        h = support_x
        for layer, scale, shift in zip(self.convs, self.scales, self.shifts):
            h = batch_norm(conv(h, layer.weight, layer.bias))
            h = torch.relu(h * scale[:, None, None] + shift[:, None, None])
        return torch.relu(self.projection(h.mean(dim=(3, 4)))).mean(dim=1)


class ClassificationMetaModel(MetaModel):
    """MAML (modulation 'none'), MMAML (softmax / sigmoid / film per channel) or Multi-MAML
    (per_mode_nets) on the 4-block conv net.

    Args:
        in_channels, channels, num_classes: the task network (32-64-128-256, N-way head).
        modulation: 'none', 'softmax', 'sigmoid' or 'film'.
        modulated_layers: conv blocks (0-based) that receive a tau; None means all of them.
        per_mode_nets: Multi-MAML (GT): one task network per mode, picked by the true mode label.
        embedding_size: the encoder's task embedding (128 in the original).
        zero_head: every task's linear head starts at zero and is not meta-learned (Kao et al.'s
            zeroing trick; off in the original, see `ConvNet`).
    """

    def __init__(self, in_channels: int = 3, channels: Sequence[int] = (32, 64, 128, 256), num_classes: int = 5,
                 modulation: str = "film", modulated_layers: Sequence[int] | None = None, per_mode_nets: int = 0,
                 embedding_size: int = 128, zero_head: bool = False) -> None:
        modulator = get_modulation(modulation)
        if modulated_layers is None:
            modulated_layers = range(len(channels)) if modulator is not None else []
        nets = [ConvNet(in_channels, channels, num_classes, modulator, sorted(set(modulated_layers)), zero_head)
                for _ in range(per_mode_nets or 1)]
        encoder = ConvTaskEncoder(in_channels, channels, embedding_size) if modulator is not None else None
        super().__init__(nets, modulation, encoder, per_mode=per_mode_nets > 0)
