"""Config validation: both shipped configs are valid; unknown keys and wrong types are one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml
from conftest import REPO

from genemask.config import documented, load_config, load_schema, schema_keys, validate_config
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
        (
            {"npmi": {"k": 6, "max_n": 4}, "masking": {"pmi_vocab": {"max_n": 4}}},
            "npmi.k: 6 exceeds npmi.max_n 4",
        ),
        ({"masking": {"k": 5}}, "masking.k: 5 differs from npmi.k 6"),
        ({"masking": {"pmi_vocab": {"min_n": 5, "max_n": 4}}}, "pmi_vocab.min_n: must not exceed"),
    ],
)
def test_bad_config_is_a_one_line_error(config, message):
    with pytest.raises(UserError) as error:
        validate_config(config, "x.yaml", load_schema())
    assert message in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "npmi:\n  k: 3\ngenome:\n  source: simulated\nnpmi:\n  max_n: 4\n",
            "line 5: invalid YAML (duplicate key 'npmi'",
        ),
        ("npmi:\n  k: 3\n  k: 4\n", "line 3: invalid YAML (duplicate key 'k'"),
        ("genome: [unclosed\n", "invalid YAML"),
        ("- a list\n", "expected a mapping of config keys"),
        ("\ufeffnpmi:\n  k: 7\n", "npmi.k: 7 is greater than the maximum of 6"),  # a byte-order mark is fine
    ],
)
def test_bad_config_file_is_a_one_line_error(tmp_path, text, message):
    path = tmp_path / "c.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(UserError) as error:
        load_config(path)
    assert message in str(error.value) and "\n" not in str(error.value)
    with pytest.raises(UserError, match="is a directory"):
        load_config(tmp_path)


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


def test_every_schema_key_is_described():
    schema = load_schema()
    undescribed = [
        f"{section}.{name}"
        for section, sub in schema["properties"].items()
        for name, leaf in schema_keys(sub, schema)
        if not leaf.get("description")
    ]
    assert undescribed == []


def test_config_readme_lists_every_key_with_the_schema_default():
    """config/README.md's key tables are the schema's (regenerate: genemask check-config --write-doc ...)."""
    readme = (REPO / "config" / "README.md").read_text()
    assert readme == documented(readme), "config/README.md is stale: run genemask check-config --write-doc"
    schema = load_schema()
    for section, sub in schema["properties"].items():
        for name, _leaf in schema_keys(sub, schema):
            assert f"| `{name}` | " in readme.split(f"## {section}\n", 1)[1], f"{section}.{name}"
    assert "| `threshold` | `0.95` |" in readme


# The keywords of JSON schema (draft 2020-12) that the schema uses or may use; any other key is a typo or a
# description cut at a comma by flow-style YAML (`{ description: a, b }` reads as a key `b`).
JSON_SCHEMA_KEYWORDS = {
    "$schema", "$defs", "$ref", "$id", "title", "description", "type", "properties", "additionalProperties",
    "patternProperties", "propertyNames", "required", "default", "examples", "items", "prefixItems", "enum",
    "const", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minItems", "maxItems", "uniqueItems",
    "minLength", "maxLength", "pattern", "format", "oneOf", "anyOf", "allOf", "not", "if", "then", "else",
    "minProperties", "maxProperties", "contains",
}  # fmt: skip
SCHEMA_FILE = REPO / "workflow" / "schemas" / "config.schema.yaml"


def _schema_nodes(node: object, path: tuple = ()):
    """Every schema object of the schema (not the values of default/enum/const, nor the names under properties)."""
    if isinstance(node, list):
        for index, item in enumerate(node):
            yield from _schema_nodes(item, (*path, str(index)))
    if not isinstance(node, dict):
        return
    yield path, node
    for key, value in node.items():
        if key in ("default", "examples", "enum", "const"):
            continue
        if key in ("properties", "$defs", "patternProperties"):
            for name, sub in value.items():
                yield from _schema_nodes(sub, (*path, key, name))
        else:
            yield from _schema_nodes(value, (*path, key))


def test_every_schema_node_holds_only_json_schema_keywords():
    bad = [
        ".".join((*path, key))
        for path, node in _schema_nodes(load_schema(SCHEMA_FILE))
        for key in node
        if key not in JSON_SCHEMA_KEYWORDS
    ]
    assert bad == []


def test_schema_is_block_style_so_no_description_can_be_cut():
    """A flow mapping (`{ ... }`) may hold only short values inside a list (oneOf alternatives), never a
    description: its text would end at the first comma."""
    flow = []

    def walk(node: yaml.Node, in_sequence: bool) -> None:
        if isinstance(node, yaml.MappingNode):
            if node.flow_style and node.value and not in_sequence:
                flow.append(f"line {node.start_mark.line + 1}")
            for key, value in node.value:
                if node.flow_style and key.value == "description":
                    flow.append(f"line {key.start_mark.line + 1}: a description in a flow mapping")
                walk(value, False)
        elif isinstance(node, yaml.SequenceNode):
            for item in node.value:
                walk(item, True)

    walk(yaml.compose(SCHEMA_FILE.read_text()), False)
    assert flow == []
