"""Multimodal few-shot image classification (paper §B; MMAML-Classification): the offline
benchmark, episodes across datasets, the conv task network and encoder."""
