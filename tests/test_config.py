"""Config validation: both shipped configs are valid; unknown keys and wrong types are one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml
from conftest import REPO

from genemask.config import load_config, load_schema, validate_config
from genemask.errors import UserError


@pytest.mark.parametrize("name", ["demo.yaml", "config.yaml"])
def test_shipped_configs_are_valid(name):
    config = load_config(REPO / "config" / name)
    assert config["npmi"]["min_count"] == 101


def test_defaults_fill_missing_keys():
    config = validate_config({"genome": {"source": "simulated"}}, "x.yaml")
    assert config["chunking"]["non_acgt"] == "split"
    assert config["genome"]["urls"]["ucsc-hg38"]["checksums"].endswith("md5sum.txt")
    assert config["masking"]["genemask"]["centre_probability"] == 0.0176


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"genome": {"sorce": "x"}}, "x.yaml: genome.sorce: unknown key (allowed: source,"),
        ({"colour": 1}, "x.yaml: colour: unknown key"),
        ({"npmi": {"max_n": "ten"}}, "x.yaml: npmi.max_n: expected integer, got str 'ten'"),
        ({"genome": {"source": "hg19"}}, "x.yaml: genome.source: 'hg19' is not one of"),
        ({"genome": {"source": "fasta"}}, "x.yaml: genome.fasta: required when genome.source is 'fasta'"),
        (
            {"pretrain": {"strategies": ["pmi-vocab"]}, "masking": {"strategies": ["random"]}},
            "not in masking",
        ),
    ],
)
def test_bad_config_is_a_one_line_error(config, message):
    with pytest.raises(UserError) as error:
        validate_config(config, "x.yaml", load_schema())
    assert message in str(error.value) and "\n" not in str(error.value)


def test_snakemake_stops_on_a_bad_config_with_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"genome": {"source": "simulated", "chromosomes": "chr1"}}))
    env = {**os.environ, "PATH": f"{REPO / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--configfile", str(bad)],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if "config error" in line]
    assert lines == [
        f"genemask: config error: {bad}: genome.chromosomes: expected array or null, got str 'chr1'"
    ]
