"""Stage 5: few-shot tasks, fine-tuning, baselines, metrics and result tables."""
