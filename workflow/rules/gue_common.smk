# GUE helpers for rules/gue.smk (config, task folders, the run list); needs common.smk's FINETUNE.
from genemask.evaluation.gue import GUE_TASKS, SPLITS, local_task_dir, task_splits

GUE = FINETUNE["gue"]
GUE_MODELS = list(FINETUNE_SOURCES)
GUE_TASK_PATTERN = "|".join(re.escape(task) for task in GUE_TASKS)
_gue_extra = sorted(set(GUE["dev_as_train"]) - set(GUE["tasks"]))
if _gue_extra:
    sys.exit(
        f"genemask: config error: finetune.gue.dev_as_train: {', '.join(_gue_extra)} not in finetune.gue.tasks"
    )


def gue_task_dir(task):
    if GUE["source"] == "huggingface":
        return f"resources/gue/{task}"
    return str(local_task_dir(task, GUE["local_dir"], GUE["local_paths"]))


def gue_source(task):
    if GUE["source"] == "huggingface":
        return f"huggingface:{GUE['repository']}@{GUE['revision']}"
    return f"local:{gue_task_dir(task)}"


def gue_split_files(wildcards):
    splits = task_splits(wildcards.task in GUE["dev_as_train"])
    return [f"{gue_task_dir(wildcards.task)}/{split}.csv" for split in splits]


def gue_dev_as_train(wildcards):
    return "--dev-as-train" if wildcards.task in GUE["dev_as_train"] else ""


def gue_recipe_overrides():
    """CLI options for the config's recipe overrides (null: each task's published recipe)."""
    flags = {
        "learning_rate": "--lr",
        "batch_size": "--batch-size",
        "warmup_steps": "--warmup-steps",
    }
    return " ".join(
        f"{flag} {GUE[key]}" for key, flag in flags.items() if GUE[key] is not None
    )


def gue_runs():
    return expand(
        "results/gue/runs/{model}/{task}/seed{seed}.json",
        model=GUE_MODELS,
        task=GUE["tasks"],
        seed=GUE["seeds"],
    )
