"""Every bad input a careless or unlucky user gives, through the CLI: exit 2, one line naming the file or option
and what was expected, and nothing left behind (no output, no hidden temporary, no `.part`)."""

from __future__ import annotations

import gzip
import os
import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from genemask.cli import main

UNREADABLE_AS_ROOT = Path("/proc/sys/vm/drop_caches")  # write-only even for root: reading it is EACCES


def random_genome(path: Path, seed: int = 0, contigs: int = 2, length: int = 20_000) -> Path:
    rng = np.random.default_rng(seed)
    records = []
    for index in range(contigs):
        seq = np.frombuffer(b"ACGT", np.uint8)[rng.integers(0, 4, length)].copy()
        seq[500:600] = ord("N")
        lines = [seq[i : i + 60].tobytes().decode() for i in range(0, length, 60)]
        records.append(f">chr{index + 1}\n" + "\n".join(lines) + "\n")
    path.write_text("".join(records))
    return path


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Path:
    """Good inputs, made once through the CLI: a genome, its chunk store, NPMI ranking and random masks."""
    root = tmp_path_factory.mktemp("workspace")
    genome = random_genome(root / "genome.fa")
    assert main(["chunk", "--fasta", str(genome), "--out", str(root / "chunks")]) == 0
    npmi = ["npmi", "--fasta", str(genome), "--out", str(root / "npmi"), "--min-count", "3", "--max-n", "6"]
    assert main(npmi) == 0
    masks = ["masks", "--chunks", str(root / "chunks"), "--out", str(root / "masks"), "--strategy", "random"]
    assert main(masks) == 0
    task_file(root / "train.tsv")
    task_file(root / "test.tsv", seed=1)
    return root


def unreadable(path: Path) -> Path:
    """A file this process may not read (root reads everything, except some /proc files)."""
    if os.geteuid() == 0:
        if not UNREADABLE_AS_ROOT.exists():
            pytest.skip("running as root, and no file root may not read")
        path.symlink_to(UNREADABLE_AS_ROOT)
    else:
        path.write_text(">s\nACGT\n")
        path.chmod(0)
    return path


def truncate(path: Path, size: int) -> None:
    with path.open("r+b") as handle:
        handle.truncate(size)


def copy_of(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


def ranks_text(ws: Path) -> str:
    return (ws / "npmi" / "kmer_ranks.tsv").read_text()


def replace_line(text: str, number: int, make: Callable[[list[str]], list[str]]) -> str:
    lines = text.splitlines()
    lines[number - 1] = "\t".join(make(lines[number - 1].split("\t")))
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Case:
    name: str
    argv: list[str]  # {ws}: the shared good inputs, {d}: this case's own directory
    message: str  # a substring of the one-line error, after "genemask COMMAND: error: "
    setup: Callable[[Path, Path], object] = field(default=lambda ws, d: None)


CONFIG_KEYS = "npmi:\n  k: 6\n  max_n: 4\nmasking:\n  pmi_vocab:\n    max_n: 4\n"
FASTA_ARGS = ["--fasta", "{d}/in.fa", "--out", "{d}/out"]
MASKS = ["masks", "--chunks", "{ws}/chunks", "--out", "{d}/out"]
STATS = [
    "mask-stats",
    "--chunks",
    "{ws}/chunks",
    "--masks",
    "{ws}/masks",
    "--ranks",
    "{ws}/npmi/kmer_ranks.tsv",
]
PRETRAIN = ["pretrain", "--chunks", "{ws}/chunks", "--out", "{d}/model", "--checkpoint-dir", "{d}/ckpt",
            "--steps", "2", "--batch-size", "2", "--global-batch", "2", "--device", "cpu", "--workers", "0"]  # fmt: skip
URL = ["download", "--url", "http://127.0.0.1:9/g.fa.gz"]  # nothing listens: every error must come first


def task_file(path: Path, length: int = 70, labels: tuple[int, ...] = (0, 1, 0, 1), seed: int = 0) -> Path:
    """A task TSV of raw sequences (header `sequence label`)."""
    rng = random.Random(seed)
    rows = ["sequence\tlabel"] + [
        "".join(rng.choice("ACGT") for _ in range(length)) + f"\t{y}" for y in labels
    ]
    path.write_text("\n".join(rows) + "\n")
    return path


TASK_ARGS = ["--task", "sim-promoter", "--shots", "2", "--seed", "0"]
FINETUNE = ["finetune", "--model", "tiny", "--random-init", "--train", "{ws}/train.tsv", "--test", "{ws}/test.tsv",
            *TASK_ARGS, "--out", "{d}/run.json"]  # fmt: skip
KMER = ["kmer-baseline", "--train", "{ws}/train.tsv", "--test", "{ws}/test.tsv", *TASK_ARGS, "--out", "{d}/run.json"]  # fmt: skip


def genemask_ranks(ranks: str) -> list[str]:
    return [*MASKS, "--strategy", "genemask", "--ranks", ranks]


CASES = [
    # check-config
    Case("config duplicate top-level key", ["check-config", "{d}/c.yaml"], "duplicate key 'genome'",
         lambda ws, d: (d / "c.yaml").write_text("genome:\n  source: fasta\ngenome:\n  source: simulate\n")),
    Case("config npmi.k over npmi.max_n", ["check-config", "{d}/c.yaml"], "npmi.k: 6 exceeds npmi.max_n 4",
         lambda ws, d: (d / "c.yaml").write_text(CONFIG_KEYS)),
    Case("config masking.k differs from npmi.k", ["check-config", "{d}/c.yaml"], "masking.k: 5 differs from npmi.k 6",
         lambda ws, d: (d / "c.yaml").write_text("masking:\n  k: 5\n")),
    Case("config is a directory", ["check-config", "{d}"], "is a directory"),
    Case("config missing", ["check-config", "{d}/none.yaml"], "none.yaml: no such config file"),
    Case("config invalid YAML", ["check-config", "{d}/c.yaml"], "c.yaml: line 3: invalid YAML",
         lambda ws, d: (d / "c.yaml").write_text("npmi:\n  k: [6\n")),
    Case("config unknown key", ["check-config", "{d}/c.yaml"], "npmi.kk: unknown key",
         lambda ws, d: (d / "c.yaml").write_text("npmi:\n  kk: 6\n")),
    # npmi
    Case("npmi: no k-mer reaches --min-count", ["npmi", *FASTA_ARGS], "--min-count 101: no 6-mer",
         lambda ws, d: (d / "in.fa").write_text(">s\nACGT\n")),
    Case("npmi --max-n 0", ["npmi", "--fasta", "{ws}/genome.fa", "--out", "{d}/out", "--max-n", "0"],
         "--max-n: expected an integer in 2..12"),
    Case("npmi --k over --max-n", ["npmi", "--fasta", "{ws}/genome.fa", "--out", "{d}/out", "--max-n", "5"],
         "--k: expected an integer in 2..5 (--max-n), got 6"),
    Case("npmi --min-count 0", ["npmi", "--fasta", "{ws}/genome.fa", "--out", "{d}/out", "--min-count", "0"],
         "--min-count: expected an integer >= 1, got 0"),
    Case("npmi unreadable FASTA", ["npmi", *FASTA_ARGS], "in.fa: cannot read the FASTA (Permission denied)",
         lambda ws, d: unreadable(d / "in.fa")),
    Case("npmi --out an existing file", ["npmi", "--fasta", "{ws}/genome.fa", "--out", "{d}/out"],
         "--out {d}/out: is a file", lambda ws, d: (d / "out").write_text("keep me\n")),
    Case("npmi missing FASTA", ["npmi", *FASTA_ARGS], "in.fa: no such file"),
    Case("npmi truncated gzip", ["npmi", *FASTA_ARGS], "in.fa: truncated or corrupt gzip stream",
         lambda ws, d: (d / "in.fa").write_bytes(gzip.compress((ws / "genome.fa").read_bytes())[:5000])),
    Case("npmi absent chromosome", ["npmi", *FASTA_ARGS[:2], "--out", "{d}/out", "--chromosomes", "chrZ"],
         "chromosome(s) chrZ not found", lambda ws, d: shutil.copy(ws / "genome.fa", d / "in.fa")),
    # chunk
    Case("chunk unreadable FASTA", ["chunk", *FASTA_ARGS], "in.fa: cannot read the FASTA (Permission denied)",
         lambda ws, d: unreadable(d / "in.fa")),
    Case("chunk --out an existing file", ["chunk", "--fasta", "{ws}/genome.fa", "--out", "{d}/out"],
         "--out {d}/out: is a file", lambda ws, d: (d / "out").write_text("keep me\n")),
    Case("chunk --out under a file", ["chunk", "--fasta", "{ws}/genome.fa", "--out", "{d}/file/out"],
         "{d}/file is a file, expected a directory", lambda ws, d: (d / "file").write_text("keep me\n")),
    Case("chunk sequence before the first header", ["chunk", *FASTA_ARGS], "line 1: expected a '>' header",
         lambda ws, d: (d / "in.fa").write_text("ACGT\n>s\nACGT\n")),
    Case("chunk invalid letter", ["chunk", *FASTA_ARGS], "base 3: unexpected character 'Z'",
         lambda ws, d: (d / "in.fa").write_text(">s\nACZT\n")),
    Case("chunk duplicate record", ["chunk", *FASTA_ARGS], "line 3: duplicate record name 's'",
         lambda ws, d: (d / "in.fa").write_text(">s\nACGT\n>s\nACGT\n")),
    Case("chunk empty FASTA", ["chunk", *FASTA_ARGS], "in.fa: empty file",
         lambda ws, d: (d / "in.fa").write_text("")),
    Case("chunk --valid-fraction 1.5", ["chunk", "--fasta", "{ws}/genome.fa", "--out", "{d}/out",
         "--valid-fraction", "1.5"], "--valid-fraction: expected a finite number in [0, 1), got 1.5"),  # fmt: skip
    # masks
    Case("masks --k 7", [*MASKS, "--strategy", "random", "--k", "7"], "--k: expected an integer in 3..6, got 7"),
    Case("masks --k 7 genemask", [*genemask_ranks("{ws}/npmi/kmer_ranks.tsv"), "--k", "7"], "--k: expected"),
    Case("masks genemask without --ranks", [*MASKS, "--strategy", "genemask"], "needs --ranks kmer_ranks.tsv"),
    Case("masks truncated chunk .npy", ["masks", "--chunks", "{d}/chunks", "--out", "{d}/out", "--strategy",
         "random"], "train.seq.npy: truncated or damaged .npy file",
         lambda ws, d: truncate(copy_of(ws / "chunks", d / "chunks") / "train.seq.npy", 100)),  # fmt: skip
    Case("masks missing chunk .npy", ["masks", "--chunks", "{d}/chunks", "--out", "{d}/out", "--strategy",
         "random"], "train.offsets.npy: missing",
         lambda ws, d: (copy_of(ws / "chunks", d / "chunks") / "train.offsets.npy").unlink()),  # fmt: skip
    Case("masks --out an existing file", [*MASKS, "--strategy", "random"], "--out {d}/out: is a file",
         lambda ws, d: (d / "out").write_text("keep me\n")),
    Case("ranks duplicated k-mer", genemask_ranks("{d}/r.tsv"), "duplicate k-mer",
         lambda ws, d: (d / "r.tsv").write_text(ranks_text(ws) + ranks_text(ws).splitlines()[5] + "\n")),
    Case("ranks empty file", genemask_ranks("{d}/r.tsv"), "r.tsv: empty file",
         lambda ws, d: (d / "r.tsv").write_text("")),
    Case("ranks NaN rank", genemask_ranks("{d}/r.tsv"), "r.tsv: line 5: rank 'nan'",
         lambda ws, d: (d / "r.tsv").write_text(replace_line(ranks_text(ws), 5, lambda f: [*f[:3], "nan"]))),
    Case("ranks NaN npmi", genemask_ranks("{d}/r.tsv"), "r.tsv: line 7: npmi 'inf'",
         lambda ws, d: (d / "r.tsv").write_text(replace_line(ranks_text(ws), 7, lambda f: [*f[:2], "inf", f[3]]))),
    Case("ranks without a ranked k-mer", genemask_ranks("{d}/r.tsv"), "no ranked k-mer",
         lambda ws, d: (d / "r.tsv").write_text("".join(
             line.split("\t")[0] + "\t1\tNA\t1\n" if i else line + "\n"
             for i, line in enumerate(ranks_text(ws).splitlines())))),  # fmt: skip
    # mask-stats
    Case("mask-stats --out an existing directory", [*STATS, "--out", "{d}"], "--out {d}: is a directory"),
    Case("mask-stats truncated mask .npy", [*STATS[:3], "--masks", "{d}/masks", *STATS[5:], "--out", "{d}/s.tsv"],
         "epoch-000.npy: truncated or damaged .npy file",
         lambda ws, d: truncate(copy_of(ws / "masks", d / "masks") / "epoch-000.npy", 90)),
    Case("mask-stats missing mask .npy", [*STATS[:3], "--masks", "{d}/masks", *STATS[5:], "--out", "{d}/s.tsv"],
         "epoch-000.npy: missing", lambda ws, d: (copy_of(ws / "masks", d / "masks") / "epoch-000.npy").unlink()),
    Case("mask-stats empty meta.json", [*STATS[:3], "--masks", "{d}/masks", *STATS[5:], "--out", "{d}/s.tsv"],
         "meta.json: unreadable", lambda ws, d: truncate(copy_of(ws / "masks", d / "masks") / "meta.json", 0)),
    Case("mask-stats ranks without a ranked k-mer", [*STATS[:5], "--ranks", "{d}/r.tsv", "--out", "{d}/s.tsv"],
         "no ranked k-mer", lambda ws, d: (d / "r.tsv").write_text("kmer\tcount\tnpmi\trank\n" + "".join(
             line.split("\t")[0] + "\t1\tNA\t1\n" for line in ranks_text(ws).splitlines()[1:]))),  # fmt: skip
    # pretrain
    Case("pretrain --lr -0.001", [*PRETRAIN, "--lr", "-0.001"], "--lr: expected a finite number in (0, 1], got -0.001"),
    Case("pretrain --lr nan", [*PRETRAIN, "--lr", "nan"], "--lr: expected a finite number in (0, 1], got nan"),
    Case("pretrain --betas 1 0.9", [*PRETRAIN, "--betas", "1", "0.9"], "--betas: expected a finite number in [0, 1), got 1.0"),
    Case("pretrain --dropout 1.5", [*PRETRAIN, "--dropout", "1.5"], "--dropout: expected a finite number in [0, 1), got 1.5"),
    Case("pretrain --out an existing file", PRETRAIN, "--out {d}/model: is a file",
         lambda ws, d: (d / "model").write_text("keep me\n")),
    Case("pretrain --checkpoint-dir an existing file", PRETRAIN, "--checkpoint-dir {d}/ckpt: is a file",
         lambda ws, d: (d / "ckpt").write_text("keep me\n")),
    Case("pretrain truncated chunk .npy", [*PRETRAIN[:1], "--chunks", "{d}/chunks", *PRETRAIN[3:]],
         "valid.offsets.npy: truncated or damaged",
         lambda ws, d: truncate(copy_of(ws / "chunks", d / "chunks") / "valid.offsets.npy", 64)),
    Case("pretrain truncated mask store", [*PRETRAIN, "--masks", "{d}/masks"], "epoch-000.npy: truncated",
         lambda ws, d: truncate(copy_of(ws / "masks", d / "masks") / "epoch-000.npy", 100)),
    # download
    Case("download --out an existing directory", [*URL, "--out", "{d}"], "--out {d}: is a directory"),
    Case("download --out under a file", [*URL, "--out", "{d}/file/g.fa.gz"], "{d}/file is a file",
         lambda ws, d: (d / "file").write_text("keep me\n")),
    Case("download bad --md5", [*URL, "--out", "{d}/g.fa.gz", "--md5", "xyz"], "expected 32 hexadecimal digits"),
    Case("download ftp URL", ["download", "--url", "ftp://host/g.fa.gz", "--out", "{d}/g.fa.gz"],
         "expected an http:// or https:// URL"),
    # the other stages' outputs
    Case("simulate-genome --out an existing directory", ["simulate-genome", "--out", "{d}", "--length", "10000"],
         "--out {d}: is a directory"),
    Case("simulate-tasks --out an existing file", ["simulate-tasks", "--genome", "{d}/g.fa.gz", "--out", "{d}/f"],
         "--out {d}/f: is a file", lambda ws, d: (d / "f").write_text("keep me\n")),
    Case("motifs --out an existing file", ["motifs", "--ranks", "{ws}/npmi/kmer_ranks.tsv", "--out", "{d}/f"],
         "--out {d}/f: is a file", lambda ws, d: (d / "f").write_text("keep me\n")),
    Case("report --figure an existing directory", ["report", "chunks", "--summary", "{ws}/chunks/summary.json",
         "--figure", "{d}", "--table", "{d}/t.html"], "--figure {d}: is a directory"),
    # fine-tuning, the k-mer baseline, tasks and results (evaluation)
    Case("finetune one class in training", [*FINETUNE, "--train", "{d}/one.tsv"], "one.tsv",
         lambda ws, d: task_file(d / "one.tsv", labels=(0, 0, 0, 0))),
    Case("finetune test label absent from training", [*FINETUNE, "--test", "{d}/three.tsv"], "three.tsv",
         lambda ws, d: task_file(d / "three.tsv", labels=(0, 1, 2, 2))),
    Case("finetune sequences of the wrong length", [*FINETUNE, "--train", "{d}/short.tsv"],
         "short.tsv: line 2: a sequence of 50 nt, but task sim-promoter has 70-nt", lambda ws, d: task_file(
             d / "short.tsv", length=50)),
    Case("finetune a 3-nt sequence", [*FINETUNE, "--train", "{d}/tiny.tsv"], "a sequence of 3 nt",
         lambda ws, d: task_file(d / "tiny.tsv", length=3)),
    Case("finetune --model missing", ["finetune", "--model", "./no/such/model", *FINETUNE[3:]],
         "--model ./no/such/model: no such directory"),
    Case("finetune --out an existing directory", [*FINETUNE[:-2], "--out", "{d}"], "is a directory"),
    Case("kmer-baseline --out an existing directory", [*KMER[:-2], "--out", "{d}"], "is a directory"),
    Case("kmer-baseline one class in the test set", [*KMER, "--test", "{d}/one.tsv"], "one.tsv",
         lambda ws, d: task_file(d / "one.tsv", labels=(1, 1, 1, 1))),
    Case("kmer-baseline wrong length", [*KMER, "--test", "{d}/long.tsv"], "but task sim-promoter has 70-nt",
         lambda ws, d: task_file(d / "long.tsv", length=90)),
    Case("results --out-dir an existing file", ["results", "--runs", "{d}/f", "--out-dir", "{d}/f"], "is a file",
         lambda ws, d: (d / "f").write_text("x")),
]  # fmt: skip


def listing(directory: Path) -> dict[str, int]:
    """Every path under `directory` (hidden ones too) with its size, without following links."""
    return {
        str(path.relative_to(directory)): 0 if path.is_dir() or path.is_symlink() else path.stat().st_size
        for path in sorted(directory.rglob("*"))
    }


def test_there_are_enough_cases():
    assert len(CASES) >= 40 and len({case.name for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_input_is_one_line_exit_2_and_leaves_nothing(
    case: Case, ws: Path, tmp_path: Path, capsys
) -> None:
    d = tmp_path / "case"
    d.mkdir()
    case.setup(ws, d)
    before, inputs = listing(d), listing(ws)
    argv = [arg.format(ws=ws, d=d) for arg in case.argv]

    code = main(argv)

    err = capsys.readouterr().err
    lines = err.splitlines()
    assert code == 2, err
    assert len(lines) == 1, err
    assert lines[0].startswith(f"genemask {argv[0]}: error: "), lines[0]
    assert case.message.format(ws=ws, d=d) in lines[0], lines[0]
    assert listing(d) == before, "partial output left behind"
    assert listing(ws) == inputs


def test_a_killed_runs_temporaries_are_removed_by_the_next_run(ws: Path, tmp_path: Path) -> None:
    """kill -9 during `masks` leaves `.out.XXXXXXXX.tmp`; the next run of the same output removes it."""
    stale_dir, stale_file = tmp_path / ".out.k1ll3d_9.tmp", tmp_path / ".s.tsv.abcd1234.tmp"
    other = tmp_path / ".out2.abcd1234.tmp"  # another output's: left alone
    for path in (stale_dir, other):
        path.mkdir()
        (path / "epoch-000.npy").write_bytes(b"\0" * 1000)
    stale_file.write_text("half a table")

    assert (
        main(
            ["masks", "--chunks", str(ws / "chunks"), "--out", str(tmp_path / "out"), "--strategy", "random"]
        )
        == 0
    )
    args = ["mask-stats", "--chunks", str(ws / "chunks"), "--masks", str(tmp_path / "out")]
    assert (
        main([*args, "--ranks", str(ws / "npmi" / "kmer_ranks.tsv"), "--out", str(tmp_path / "s.tsv")]) == 0
    )

    assert sorted(p.name for p in tmp_path.iterdir()) == [".out2.abcd1234.tmp", "out", "s.tsv"]


def test_a_byte_order_mark_is_read_past(tmp_path: Path, capsys) -> None:
    fasta = tmp_path / "bom.fa"
    fasta.write_bytes(b"\xef\xbb\xbf" + random_genome(tmp_path / "plain.fa", length=3000).read_bytes())
    for command in ("chunk", "npmi"):
        extra = ["--min-count", "2", "--max-n", "6"] if command == "npmi" else []
        assert main([command, "--fasta", str(fasta), "--out", str(tmp_path / command), *extra]) == 0
    assert (tmp_path / "npmi" / "kmer_ranks.tsv").exists()
