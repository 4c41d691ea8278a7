"""Stage 5: few-shot tasks, fine-tuning, baselines, metrics and result tables.

Its public names (`__all__`), imported on first use: `from genemask.evaluation import ...`.
"""

from genemask._lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "task_registry": ("TaskSpec", "task_spec"),
        "tasks": ("TASKS", "LabelledSequences", "prepare_task", "sample_task", "read_labelled_tsv"),
        "settings": ("FinetuneSettings", "finetune_regime"),
        "finetune": ("run_finetune",),
        "kmer_baseline": ("run_kmer_baseline",),
        "metrics": ("classification_metrics",),
        "results": ("make_results", "write_run_record", "read_run_record"),
        "paired": ("paired_statistics", "paired_table"),
        "gue": ("gue_task", "run_gue_finetune"),
        "gue_tables": ("make_gue_results",),
    },
)
