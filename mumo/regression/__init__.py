"""Multimodal few-shot regression (paper §4.1): function families, BiLSTM encoder, MLP meta-model."""
