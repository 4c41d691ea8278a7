"""Stage 7: report figures and tables over every stage's outputs.

Its public names (`__all__`), imported on first use: `from genemask.report import ...`.
"""

from genemask._lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "figures": ("chunk_report", "npmi_report", "masking_report", "training_report"),
        "learning_curves": ("learning_curve_report",),
    },
)
