"""Stage 4: model presets, pretraining data, checkpoints and the pretraining loop."""
