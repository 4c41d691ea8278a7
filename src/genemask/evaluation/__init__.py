"""Stage 5: few-shot tasks, fine-tuning, baselines, metrics and result tables.

Its public names (`__all__`), imported on first use: `from genemask.evaluation import ...`.
"""

from genemask._lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "task_registry": ("TaskSpec", "task_spec", "GUE_TASKS"),
        "tasks": ("TASKS", "prepare_task", "sample_task", "read_labelled_tsv"),
        "validation": ("LabelledSequences", "read_labelled"),
        "settings": ("FinetuneSettings", "finetune_regime"),
        "finetune": ("run_finetune",),
        "kmer_baseline": ("run_kmer_baseline",),
        "metrics": ("classification_metrics",),
        "run_records": ("write_run_record", "read_run_record"),
        "run_cache": ("run_all", "RunCache"),
        "results": ("make_results",),
        "paired": ("paired_statistics", "paired_table"),
        "gue_recipe": ("GueRecipe", "RECIPES"),
        "gue": ("gue_task", "run_gue_finetune"),
        "gue_tables": ("make_gue_results",),
    },
)
