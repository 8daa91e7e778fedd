"""The PyTorch model: the I2V-Adapter attention processors (`adapter`, `attention`), the components
of a preset built from its config with seeded random weights (`components`), the per-stage modules
that export traces (`stage_modules`) and the Frame Similarity Prior in torch (`fsp`). Building never
loads weights; `i2v_adapter.checkpoints` does that."""
