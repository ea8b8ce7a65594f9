"""Stage ``train`` (rules ``train``, ``predict``): one model per (dataset, ε, seed) with Opacus, resumable, and its
validation and test predictions."""
