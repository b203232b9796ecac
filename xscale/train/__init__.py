"""5. Model and loop: DeepSpeed engine, training loop, prediction, distributed set-up.

Imports nothing from the layers above it (hyperparameters arrive as a Protocol)."""
