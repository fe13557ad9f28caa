"""The meta-learning core that every task family uses.

- `modulation`: softmax / sigmoid / FiLM modulation of hidden units or channels by tau (§3.2);
- `heads`: task embedding -> tau per modulated layer;
- `mlp`: the functional base network (per-task weights with a leading task dimension);
- `inner_sgd`: the differentiable inner update, with the gradient clamp;
- `low_rank`: the opt-in low-rank storage of per-task linear weights;
- `engines`: the inner loop of supervised families (batched, and learn2learn as reference);
- `graph_step`: a whole meta-iteration replayed from a CUDA graph;
- `episode`, `stream`: meta-batches of tasks, the seeded training stream and fixed evaluation sets;
- `learner`, `metrics`: the LightningModule base (history, evaluation, optimiser) and summaries.
"""
