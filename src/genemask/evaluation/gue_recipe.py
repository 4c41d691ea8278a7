"""How each GUE task is fine-tuned, as the authors ran it: one table, read by the runs, the CLI and the estimate.

Source: CM-GEMS's GUE script (roysoumya/curriculum-GeneMask@d0bad0d, `scripts/run_dnabert1_modelsgpu2_outputdir.sh`,
DNABERT-6 models: torchrun on 2 GPUs x 8 sequences x gradient accumulation 2 = 32 per optimiser step, 4 for Covid =
64), which is DNABERT-2's `finetune/scripts/run_dnabert1.sh` (MAGICS-LAB/DNABERT_2@d87d29f) run with the authors'
models; both run `finetune/train.py` (HF Trainer, AdamW lr 3e-5, linear warm-up then decay, `evaluation_strategy
steps`, `load_best_model_at_end` on the dev loss). Where the two differ (Covid: 9 epochs and batch 64 in the
CM-GEMS script, 8 epochs and batch 32 in DNABERT-2's `run_dnabert2.sh`), we follow the CM-GEMS script, whose
numbers we reproduce (docs/method.md sections 9 and 10). Mouse tasks stop at `max_steps` 1,000 whatever the epochs
(the HF Trainer then ignores `num_train_epochs`). `max_length` is the script's `model_max_length` in tokens; the
model's position limit (512 for DNABERT-6) caps it at run time.

Import-light (no numpy) so that `genemask gue --help` and `genemask estimate` read it cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass

from genemask.evaluation.task_registry import gue_task

LEARNING_RATE = 3e-5  # every task
BATCH_SIZE = 32  # sequences per optimiser step, every task but Covid


@dataclass(frozen=True)
class GueRecipe:
    epochs: int
    warmup_steps: int
    eval_every: int  # optimiser steps between dev evaluations (the best checkpoint by dev loss is kept)
    max_length: int  # tokens incl. [CLS]/[SEP]
    max_steps: int | None = None  # a step cap that overrides the epochs (HF `max_steps`)
    batch_size: int = BATCH_SIZE
    learning_rate: float = LEARNING_RATE

    def total_steps(self, n_train: int, batch_size: int | None = None) -> int:
        """Optimiser steps of a run on `n_train` rows: the step cap if any, else epochs x batches per epoch."""
        if self.max_steps is not None:
            return self.max_steps
        per_step = batch_size or self.batch_size
        return self.epochs * -(-n_train // per_step)


# Keyed by the task's family: the scripts' loops (`for data in prom_core_all prom_core_notata` ...).
RECIPES: dict[str, GueRecipe] = {
    "emp": GueRecipe(epochs=3, warmup_steps=50, eval_every=200, max_length=512),
    "prom_core": GueRecipe(epochs=4, warmup_steps=50, eval_every=400, max_length=80),  # all, notata
    "prom_core_tata": GueRecipe(epochs=10, warmup_steps=50, eval_every=200, max_length=80),
    "prom_300": GueRecipe(epochs=4, warmup_steps=50, eval_every=400, max_length=310),  # all, notata
    "prom_300_tata": GueRecipe(epochs=10, warmup_steps=50, eval_every=200, max_length=310),
    "splice": GueRecipe(epochs=5, warmup_steps=50, eval_every=200, max_length=410),
    "virus": GueRecipe(epochs=9, warmup_steps=50, eval_every=200, max_length=1024, batch_size=64),
    "mouse": GueRecipe(epochs=5, warmup_steps=30, eval_every=200, max_length=110, max_steps=1000),
    "tf": GueRecipe(epochs=3, warmup_steps=30, eval_every=200, max_length=110),
}


def recipe_family(task: str) -> str:
    """The RECIPES key of a GUE task (its folder group in the archive, the TATA promoter sets apart)."""
    spec = gue_task(task)
    if task in ("prom_core_tata", "prom_300_tata"):
        return task
    if task.startswith("prom_"):
        return task.rsplit("_", 1)[0]
    return spec.source.split("/")[0].lower()


def gue_recipe(task: str) -> GueRecipe:
    return RECIPES[recipe_family(task)]
