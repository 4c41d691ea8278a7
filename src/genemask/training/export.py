"""Models of one pretraining run at earlier steps: weights kept during the run, exported after it.

A run keeps its model weights (no optimiser state) every `keep_weights_every` steps, in
`checkpoint_dir/weights/step-00000030.safetensors`; these are never pruned. `export_model` turns one of them into a
model folder like the run's own (its config and tokenizer files, the kept weights as `model.safetensors`,
`pretrain.json`, `metrics.csv` up to that step), so that one run, whose learning-rate schedule spans its full
length, gives the whole learning curve, and an export step added after the run has finished needs no training.

Exporting loads neither torch nor transformers: the kept file holds the same tensors under the same names as
`save_pretrained`'s, so it is rewritten as is, with the metadata transformers checks for (`format: pt`). That
makes an export a second instead of the ten that importing the model code takes on a busy CPU.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from safetensors.numpy import load_file, save_file

from genemask.atomic import atomic_dir, atomic_file
from genemask.errors import UserError

if TYPE_CHECKING:
    import torch

# The files of a run's model folder that its exports make anew; every other file of it (config, tokenizer) is
# copied. Hidden files (the output marker, Snakemake's timestamp) are the folder's own, never copied.
EXPORT_WRITES = ("model.safetensors", "pretrain.json", "metrics.csv")


def weights_path(checkpoint_dir: Path, step: int) -> Path:
    return Path(checkpoint_dir) / "weights" / f"step-{step:08d}.safetensors"


def save_weights(model: torch.nn.Module, checkpoint_dir: Path, step: int) -> Path:
    """Keep the model's weights at `step` (written atomically; an existing file is left alone)."""
    from safetensors.torch import save_model

    target = weights_path(checkpoint_dir, step)
    if not target.exists():
        with atomic_file(target) as tmp:
            save_model(model, str(tmp))
    return target


def kept_steps(checkpoint_dir: Path) -> list[int]:
    folder = Path(checkpoint_dir) / "weights"
    return sorted(int(path.name[5:13]) for path in folder.glob("step-*.safetensors"))


def _metrics_up_to(text: str, step: int) -> str:
    rows = list(csv.DictReader(io.StringIO(text)))
    if not rows:
        return text
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(row for row in rows if int(row["step"]) <= step)
    return out.getvalue()


def export_model(run: Path, checkpoint_dir: Path, step: int, out: Path) -> Path:
    """Write the model of finished run `run` (its model folder) at `step` to `out`, from the kept weights."""
    run, checkpoint_dir, out = Path(run), Path(checkpoint_dir), Path(out)
    summary_path = run / "pretrain.json"
    if not summary_path.is_file():
        raise UserError(f"{run}: not a finished pretraining run (no pretrain.json)")
    summary = json.loads(summary_path.read_text())
    if not 0 < step < summary["steps"]:
        raise UserError(f"--step {step}: must lie between 0 and the run's {summary['steps']} steps")
    weights = weights_path(checkpoint_dir, step)
    if not weights.is_file():
        kept = ", ".join(map(str, kept_steps(checkpoint_dir))) or "none"
        raise UserError(
            f"{weights}: the run kept no weights at step {step} (kept: {kept}); rerun it with a"
            " --keep-weights-every (pretrain.keep_weights_every) that divides the step"
        )
    tensors = load_file(weights)
    with atomic_dir(out) as tmp:
        for source in sorted(run.iterdir()):
            if source.is_file() and not source.name.startswith(".") and source.name not in EXPORT_WRITES:
                shutil.copyfile(source, tmp / source.name)
        save_file(tensors, tmp / "model.safetensors", metadata={"format": "pt"})
        exported = {
            "exported_from": str(run),
            "run_steps": summary["steps"],
            "steps": step,
            "settings": summary["settings"],
            "fingerprint": summary["fingerprint"],
            "tokenizer_saved": summary.get("tokenizer_saved", (run / "tokenizer_config.json").is_file()),
        }
        (tmp / "pretrain.json").write_text(json.dumps(exported, indent=2) + "\n")
        if (run / "metrics.csv").is_file():
            (tmp / "metrics.csv").write_text(_metrics_up_to((run / "metrics.csv").read_text(), step))
    return out
