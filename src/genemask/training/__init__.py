"""Stage 4: model presets, the run identity, pretraining data, checkpoints and the pretraining loop.

Its public names (`__all__`), imported on first use: `from genemask.training import ...`. The loop itself is
`genemask.training.pretrain.pretrain` (a name the package cannot export: its module has the same name).
"""

from genemask._lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "settings": ("PRESETS", "Preset", "PretrainConfig"),
        "identity": ("RUN_SETTINGS", "RunSetting", "mask_identity", "run_identity", "run_setting_names"),
        "models": ("build_model", "model_config"),
        "export": ("export_model",),
    },
)
