"""The conda environments of the rules agree with pyproject.toml, `make setup`'s build table and the rules' GPU
resources."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml
from packaging.specifiers import SpecifierSet

from genemask.training.torch_install import CPU_SPEC, CUDA_BUILDS

REPO = Path(__file__).resolve().parents[1]
ENVS = REPO / "workflow" / "envs"


def pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def torch_pin(env: dict) -> str:
    """The torch version an environment installs (pip `torch==X` or conda `pytorch=X`)."""
    pins = []
    for dependency in env["dependencies"]:
        if isinstance(dependency, dict):
            pins += [m[1] for line in dependency.get("pip", []) if (m := re.fullmatch(r"torch==(\S+)", line))]
        elif m := re.fullmatch(r"pytorch=+(\S+)", dependency):
            pins.append(m[1])
    assert len(pins) == 1, env
    return pins[0]


def rule_envs() -> dict[str, str]:
    """Rule name -> conda env file name, from workflow/rules/*.smk."""
    envs = {}
    for path in (REPO / "workflow" / "rules").glob("*.smk"):
        for block in re.split(r"^rule ", path.read_text(), flags=re.MULTILINE)[1:]:
            name = block.split(":", 1)[0]
            if m := re.search(r"conda:\s*\"\.\./envs/(\w+\.yaml)\"", block):
                envs[name] = m[1]
    return envs


def test_the_cpu_env_installs_the_cpu_wheel_make_setup_installs_and_pyproject_allows() -> None:
    torch_spec = next(d for d in pyproject()["dependencies"] if re.match(r"torch\b", d))
    allowed = SpecifierSet(torch_spec.removeprefix("torch"))
    cpu_release = CPU_SPEC.removeprefix("torch==")
    assert torch_pin(yaml.safe_load((ENVS / "cpu.yaml").read_text())) == cpu_release
    assert cpu_release in allowed, (cpu_release, torch_spec)


def test_the_cuda_env_pins_a_build_its_index_publishes() -> None:
    """A `+cuXYZ` pin from the index of that CUDA version, and a release the build table lists for it."""
    torch_spec = next(d for d in pyproject()["dependencies"] if re.match(r"torch\b", d))
    env = yaml.safe_load((ENVS / "cuda.yaml").read_text())
    release, _, label = torch_pin(env).partition("+")
    build = next(b for b in CUDA_BUILDS if b.index == label)
    assert release == build.torch and release in SpecifierSet(torch_spec.removeprefix("torch"))
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert f"--extra-index-url {build.url}" in pip, pip


def test_every_env_has_a_python_pyproject_supports_and_installs_this_package() -> None:
    requires = SpecifierSet(pyproject()["requires-python"])
    for path in ENVS.glob("*.yaml"):
        dependencies = yaml.safe_load(path.read_text())["dependencies"]
        python = next(d for d in dependencies if isinstance(d, str) and d.startswith("python="))
        assert f"{python.split('=')[1]}.0" in requires, (path.name, python)
        pip = next(d["pip"] for d in dependencies if isinstance(d, dict))
        assert "-e ../.." in pip, path.name


def test_rules_that_get_a_gpu_use_the_cuda_env_and_the_others_the_cpu_env() -> None:
    profile = yaml.safe_load((REPO / "slurm" / "config.yaml").read_text())
    gpu_rules = {rule for rule, resources in profile["set-resources"].items() if resources.get("gpu", 0) >= 1}
    envs = rule_envs()
    assert gpu_rules and gpu_rules <= set(envs), gpu_rules - set(envs)
    for rule, env in envs.items():
        assert env == ("cuda.yaml" if rule in gpu_rules else "cpu.yaml"), (rule, env)
