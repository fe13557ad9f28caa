"""The regression task encoder: a BiLSTM over the K support pairs (paper §3.1, Eq. 1)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class LSTMTaskEncoder(nn.Module):
    """Bidirectional LSTM over the K support pairs (x_i, y_i) of every task at once.

    The embedding is the top layer's final forward state concatenated with its final backward
    state: 2 * hidden_size features (80 for the paper's 40 units per direction).
    """

    def __init__(self, input_size: int = 2, hidden_size: int = 40, num_layers: int = 2) -> None:
        super().__init__()
        self.lstm = nn.LSTM(input_size, hidden_size, num_layers, batch_first=True, bidirectional=True)
        self.embedding_size = 2 * hidden_size

    def forward(self, support_x: Tensor, support_y: Tensor) -> Tensor:
        """[T, K, d_in], [T, K, d_out] -> task embeddings [T, 2 * hidden_size]."""
        _, (h_n, _) = self.lstm(torch.cat([support_x, support_y], dim=-1))
        return torch.cat([h_n[-2], h_n[-1]], dim=-1)
