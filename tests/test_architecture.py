"""The package's architecture, checked by parsing its source: stage folders, imports only going down the
stages, and small modules."""

from __future__ import annotations

import ast
import importlib
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "src" / "genemask"
# Pipeline order: a stage may import itself and any stage before it, never one after it.
STAGES = ("genome", "ngrams", "masking", "training", "evaluation", "motifs", "report")
# Shared by every stage: they import no stage.
FOUNDATION = ("errors", "atomic", "config", "options", "_lazy")
# The user-facing layer above every stage: the CLI and its adapters, and planning across stages.
INTERFACE = ("cli", "commands", "estimate", "__main__")
MAX_MODULE_LINES = 500


def _modules() -> list[Path]:
    return sorted(path for path in PACKAGE.rglob("*.py"))


def _dotted(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_submodule(name: str) -> bool:
    return (PACKAGE / name).is_dir() or (PACKAGE / f"{name}.py").is_file()


def _imported_modules(path: Path) -> set[str]:
    """Every `genemask.*` module named by an import anywhere in the file, function-level imports included."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("genemask"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("genemask"):
            if node.module == "genemask":  # `from genemask import x`: a submodule, or a name of the package
                found.update(
                    f"genemask.{a.name}" if _is_submodule(a.name) else "genemask" for a in node.names
                )
            else:
                found.add(node.module)
    return found


def _layer(module: str) -> tuple[str, int]:
    """(kind, order) of a module: foundation -1, a stage its index, the CLI layer (cli, commands) last."""
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else ""
    if top in FOUNDATION or module == "genemask":
        return "foundation", -1
    if top in STAGES:
        return "stage", STAGES.index(top)
    assert top in INTERFACE, f"{module}: neither a stage, the foundation nor the interface layer"
    return "interface", len(STAGES)


def test_stage_folders_exist():
    for stage in STAGES:
        assert (PACKAGE / stage / "__init__.py").is_file(), f"missing stage package {stage}"
    loose = {p.name.removesuffix(".py") for p in PACKAGE.iterdir() if p.suffix == ".py" or p.is_dir()}
    stray = loose - {*STAGES, *FOUNDATION, *INTERFACE, "__init__", "__pycache__", "schemas"}
    assert stray == set(), f"modules outside a stage: {sorted(stray)}"


def test_imports_only_go_down_the_stages():
    violations = []
    for path in _modules():
        here = _dotted(path)
        kind, order = _layer(here)
        for target in _imported_modules(path):
            target_kind, target_order = _layer(target)
            if kind == "interface":
                continue  # the CLI adapters may use every stage
            if target_kind == "interface" or target_order > order:
                violations.append(f"{here} imports {target}")
    assert violations == []


def test_no_module_over_the_size_limit():
    sizes = {str(p.relative_to(PACKAGE)): len(p.read_text().splitlines()) for p in _modules()}
    assert {name: n for name, n in sizes.items() if n > MAX_MODULE_LINES} == {}


def test_the_import_checker_sees_violations(tmp_path):
    """The checker itself: an upward import, also inside a function, is found."""
    module = tmp_path / "probe.py"
    module.write_text("def f():\n    from genemask.report.figures import x\nfrom genemask import config\n")
    assert _imported_modules(module) == {"genemask.report.figures", "genemask.config"}
    assert _layer("genemask.report.figures")[1] > _layer("genemask.genome.fasta")[1]
    assert _layer("genemask.errors") == ("foundation", -1)
    assert _layer("genemask.commands.npmi")[0] == "interface"


def test_the_training_loop_fits_in_a_reader_s_head():
    """training/pretrain.py's train() reads top to bottom; helpers carry set-up, resume and saving."""
    source = (PACKAGE / "training" / "pretrain.py").read_text()
    (loop,) = [n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.FunctionDef) and n.name == "train"]
    assert loop.end_lineno - loop.lineno + 1 < 150


def test_every_stage_declares_its_public_names():
    for stage in STAGES:
        package = importlib.import_module(f"genemask.{stage}")
        assert package.__all__, f"genemask.{stage} declares no public names"
        for name in package.__all__:
            assert not _is_submodule(f"{stage}/{name}"), f"genemask.{stage}.{name} is a module's name too"
            assert getattr(package, name) is not None


def test_the_workflow_s_imports_leave_torch_alone():
    """Snakemake imports the run identity and the presets; `genemask --help` the settings: none may import torch."""
    probe = (
        "import sys, genemask.training.identity, genemask.training.settings, genemask.evaluation.settings; "
    )
    probe += "sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", probe], check=False).returncode == 0


def test_commands_share_helpers_without_importing_each_other():
    for path in sorted((PACKAGE / "commands").glob("*.py")):
        others = {m for m in _imported_modules(path) if m.startswith("genemask.commands.")}
        assert others <= {"genemask.commands._common"}, f"{path.name} imports {sorted(others)}"


def _resolves(dotted: str) -> bool:
    parts = dotted.split(".")
    for split in range(len(parts), 0, -1):
        try:
            value = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for attribute in parts[split:]:
            if not hasattr(value, attribute):
                return False
            value = getattr(value, attribute)
        return True
    return False


def test_the_where_a_change_goes_table_names_what_exists():
    """docs/architecture.md's table: every file, folder and symbol it names is there, and it covers the changes a
    maintainer makes most."""
    text = (REPO / "docs" / "architecture.md").read_text().split("## Where a change goes", 1)[1]
    rows = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| change")]
    changes = " ".join(row.split("|")[1] for row in rows)
    for change in (
        "setting",
        "model size",
        "masking strategy",
        "task",
        "statistical test",
        "rule",
        "command",
    ):
        assert change in changes, f"no row for a new {change}"
    named = re.findall(r"`([^`]+)`", text)
    paths = [name for name in named if "/" in name and " " not in name]
    symbols = [name for name in named if name.startswith("genemask.")]
    assert len(paths) >= 10 and len(symbols) >= 15
    for path in paths:
        assert (REPO / path.rstrip("/")).exists(), f"docs/architecture.md names {path}, which does not exist"
    for symbol in symbols:
        assert _resolves(symbol), f"docs/architecture.md names {symbol}, which does not exist"
