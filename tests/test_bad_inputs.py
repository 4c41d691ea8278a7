"""Every bad input a careless or unlucky user gives, through the CLI: exit 2, one line naming the file or option
and what was expected, and nothing left behind (no output, no hidden temporary, no `.part`)."""

from __future__ import annotations

import gzip
import json
import os
import random
import shutil
import socket
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


def swap_ranks(text: str) -> str:
    """The ranks of the best and the tenth k-mer swapped: a rank column that contradicts the npmi column."""
    lines = [line.split("\t") for line in text.splitlines()]
    lines[1][3], lines[10][3] = lines[10][3], lines[1][3]
    return "\n".join("\t".join(fields) for fields in lines) + "\n"


def newer_format(chunks: Path) -> None:
    summary = json.loads((chunks / "summary.json").read_text())
    (chunks / "summary.json").write_text(json.dumps(summary | {"format_version": 2}))


def live_lock(target: Path) -> None:
    """The lock of `target` as another, live run on this host holds it (our parent process: alive)."""
    holder = {
        "host": socket.gethostname(),
        "pid": os.getppid(),
        "command": "genemask pretrain",
        "started": "now",
    }
    (target.parent / f".{target.name}.lock").write_text(json.dumps(holder))


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
    # issue 21: outputs are never a weapon
    Case("masks --out a directory of the user's", [*MASKS, "--strategy", "random"], "genemask did not write",
         lambda ws, d: (d / "out").mkdir() or (d / "out" / "notes.txt").write_text("mine\n")),
    Case("chunk --out a directory of the user's", ["chunk", "--fasta", "{ws}/genome.fa", "--out", "{d}/out"],
         "add --force", lambda ws, d: (d / "out").mkdir() or (d / "out" / "notes.txt").write_text("mine\n")),
    Case("npmi --out a directory of the user's", ["npmi", "--fasta", "{ws}/genome.fa", "--out", "{d}/out"],
         "genemask did not write", lambda ws, d: (d / "out").mkdir() or (d / "out" / "n.txt").write_text("x")),
    Case("pretrain --checkpoint-dir inside --out", [*PRETRAIN, "--checkpoint-dir", "{d}/model/ck",
         "--keep-weights-every", "1"], "--checkpoint-dir {d}/model/ck: lies inside"),
    Case("pretrain --runtime-minutes -5", [*PRETRAIN, "--runtime-minutes", "-5"],
         "argument --runtime-minutes: expected a finite number > 0, got -5.0"),
    Case("pretrain --out held by another run", PRETRAIN, "in use by another run",
         lambda ws, d: live_lock(d / "model")),
    # issue 21: inputs that mean nothing
    Case("chunk an all-N genome", ["chunk", *FASTA_ARGS], "no A, C, G or T",
         lambda ws, d: (d / "in.fa").write_text(">s\n" + "N" * 300 + "\n")),
    Case("npmi an all-N genome", ["npmi", *FASTA_ARGS], "no A, C, G or T",
         lambda ws, d: (d / "in.fa").write_text(">s\n" + "N" * 300 + "\n")),
    Case("chunk a genome of 3-nt islands", ["chunk", *FASTA_ARGS], "no ACGT run of at least 6 nt",
         lambda ws, d: (d / "in.fa").write_text(">s\n" + "ACGN" * 100 + "\n")),
    Case("chunk 1 and chr1 with --chromosomes chr1", ["chunk", *FASTA_ARGS, "--chromosomes", "chr1"],
         "records '1' (line 1) and 'chr1' both name chr1",
         lambda ws, d: (d / "in.fa").write_text(">1\nACGTACGTAC\n>chr1\nACGTACGTAA\n")),
    Case("chunk RNA", ["chunk", *FASTA_ARGS], "'U' is RNA, expected DNA; convert U to T",
         lambda ws, d: (d / "in.fa").write_text(">s\nACGUACGU\n")),
    Case("chunk --random-sampling-coverage nan", ["chunk", "--fasta", "{ws}/genome.fa", "--out", "{d}/out",
         "--random-sampling-coverage", "nan"], "argument --random-sampling-coverage: expected a finite number in [0, 100], got nan"),
    Case("masks a chunk store of letters", ["masks", "--chunks", "{d}/chunks", "--out", "{d}/out", "--strategy",
         "random"], "expected the codes 0..3", lambda ws, d: np.save(
             copy_of(ws / "chunks", d / "chunks") / "train.seq.npy",
             np.frombuffer(b"ACGT", np.uint8)[np.load(ws / "chunks" / "train.seq.npy")])),
    Case("masks a chunk store of a newer format", ["masks", "--chunks", "{d}/chunks", "--out", "{d}/out",
         "--strategy", "random"], "chunk store format 2", lambda ws, d: newer_format(copy_of(ws / "chunks", d / "chunks"))),
    Case("ranks whose rank column contradicts npmi", genemask_ranks("{d}/r.tsv"), "contradicts the npmi column",
         lambda ws, d: (d / "r.tsv").write_text(swap_ranks(ranks_text(ws)))),
    Case("masks pmi-vocab on an n-gram range the table lacks", [*MASKS, "--strategy", "pmi-vocab", "--ngrams",
         "{ws}/npmi/ngrams.parquet", "--min-n", "8", "--max-n", "9"], "no n-gram with an NPMI of length 8..9"),
    Case("pretrain chunks shorter than one token", [*PRETRAIN[:1], "--chunks", "{d}/chunks", *PRETRAIN[3:]],
         "longest chunk is 5 nt, shorter than one 6-mer token", lambda ws, d: main(
             ["chunk", "--fasta", str(ws / "genome.fa"), "--out", str(d / "chunks"), "--min-length", "3",
              "--max-length", "5"])),
    # issue 21: one line, saying what is wrong
    Case("results a record whose metrics are null", ["results", "--runs", "{d}/r.json", "--out-dir", "{d}/o"],
         "metrics is None, expected an object", lambda ws, d: (d / "r.json").write_text(
             '{"model": "m", "task": "t", "shots": 2, "seed": 0, "metrics": null}')),
    Case("results a record that is a list", ["results", "--runs", "{d}/r.json", "--out-dir", "{d}/o"],
         "a JSON list, expected a run record", lambda ws, d: (d / "r.json").write_text("[1, 2]")),
    Case("check-config --write-doc a missing file", ["check-config", "--write-doc", "{d}/README.md"],
         "--write-doc {d}/README.md: no such file"),
    Case("report chunks on an incomplete summary", ["report", "chunks", "--summary", "{d}/s.json", "--figure",
         "{d}/f.png", "--table", "{d}/t.html"], "incomplete chunk store summary, lacks contigs",
         lambda ws, d: (d / "s.json").write_text('{"bases_acgt": 5}')),
    Case("kmer-baseline a space after a sequence", [*KMER, "--train", "{d}/sp.tsv"],
         "line 3: the sequence field has a space", lambda ws, d: (d / "sp.tsv").write_text(
             (ws / "train.tsv").read_text().replace("\t1\n", " \t1\n", 1))),
    Case("config key typo", ["check-config", "{d}/c.yaml"], "k); did you mean 'max_n'?",
         lambda ws, d: (d / "c.yaml").write_text("npmi:\n  max_nn: 4\n")),
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


# Issue 21: outputs are never a weapon, inputs that mean nothing are refused, every message one line.


def one_line_error(capsys, command: str) -> str:
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"genemask {command}: error: "), lines
    return lines[0]


def sandbox(root: Path) -> Path:
    """A directory of the user's: files that must survive every refused command."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "notes.txt").write_text("mine\n")
    (root / "data").mkdir(exist_ok=True)
    (root / "data" / "keep.fa").write_text(">s\nACGT\n")
    return root


@pytest.mark.parametrize("where", [".", "..", "~"])
def test_the_working_directory_its_ancestors_and_home_are_never_an_output(
    where: str, ws: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    home = sandbox(tmp_path / "home")
    work = sandbox(home / "work")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    before = listing(home)
    out = str(Path(where).expanduser())

    code = main(["chunk", "--fasta", str(ws / "genome.fa"), "--out", out, "--force"])

    assert code == 2
    assert "genemask never replaces it" in one_line_error(capsys, "chunk")
    assert listing(home) == before


def test_the_root_directory_is_never_an_output() -> None:
    from genemask.atomic import check_output_dir
    from genemask.errors import UserError

    with pytest.raises(UserError, match="is the root directory"):
        check_output_dir("/", whole=True, force=True)


def test_force_writes_into_a_users_directory_and_keeps_its_other_files(ws: Path, tmp_path: Path) -> None:
    out = sandbox(tmp_path / "project")
    masks = ["masks", "--chunks", str(ws / "chunks"), "--out", str(out), "--strategy", "random"]
    assert main([*masks, "--force"]) == 0
    assert (out / "notes.txt").read_text() == "mine\n" and (out / "data" / "keep.fa").exists()
    assert (out / "meta.json").exists() and (out / ".genemask-output").exists()
    (out / "later.txt").write_text("added after the run\n")
    assert main(masks) == 0  # our output now: replaced without --force, the user's files still kept
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == sorted(
        ["data", "epoch-000.npy", "later.txt", "meta.json", "notes.txt", "token_offsets.npy"]
    )
    assert [p.name for p in tmp_path.iterdir()] == ["project"]  # no lock, temporary or backup left


def test_a_missing_or_empty_output_directory_is_accepted_as_snakemake_leaves_it(
    ws: Path, tmp_path: Path
) -> None:
    (tmp_path / "empty").mkdir()
    for name in ("empty", "missing/below"):
        assert main(["chunk", "--fasta", str(ws / "genome.fa"), "--out", str(tmp_path / name)]) == 0
        assert (tmp_path / name / "train.seq.npy").exists()


def test_an_interrupted_npmi_leaves_the_previous_output_whole(ws: Path, tmp_path: Path, monkeypatch) -> None:
    import genemask.ngrams.npmi as npmi

    out = tmp_path / "npmi"
    args = ["npmi", "--fasta", str(ws / "genome.fa"), "--out", str(out), "--max-n", "6"]
    assert main([*args, "--min-count", "3"]) == 0
    before = {path.name: path.read_bytes() for path in out.iterdir()}

    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(npmi, "write_table", interrupted)  # after kmer_ranks.tsv, before summary.json
    assert main([*args, "--min-count", "8"]) == 130

    assert {path.name: path.read_bytes() for path in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["npmi"]


def test_one_runs_clean_up_never_deletes_another_runs_live_temporary(ws: Path, tmp_path: Path) -> None:
    from genemask.atomic import atomic_dir

    out = tmp_path / "out"
    masks = ["masks", "--chunks", str(ws / "chunks"), "--out", str(out), "--strategy", "random"]
    with atomic_dir(out) as first:  # a run writing `out`, live while the second one runs
        (first / "meta.json").write_text("{}")
        assert main(masks) == 0
        assert first.is_dir()
    assert (out / "meta.json").read_text() == "{}"  # the first run finished last: its output, whole


def test_a_stale_lock_of_a_dead_process_is_recovered_with_a_warning(ws: Path, tmp_path: Path, capsys) -> None:
    import subprocess
    import sys

    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    holder = {
        "host": socket.gethostname(),
        "pid": int(dead.stdout),
        "command": "genemask chunk",
        "started": "x",
    }
    (tmp_path / ".out.lock").write_text(json.dumps(holder))

    assert main(["chunk", "--fasta", str(ws / "genome.fa"), "--out", str(tmp_path / "out")]) == 0

    assert f"removing the stale lock {tmp_path / '.out.lock'}" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


@pytest.fixture
def tiny_disk(tmp_path: Path):
    """A 1 MiB tmpfs (needs root and mount rights; skipped otherwise)."""
    import subprocess

    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                                           capture_output=True).returncode:  # fmt: skip
        pytest.skip("cannot mount a tmpfs here")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_is_refused_up_front_and_at_the_write(ws: Path, tiny_disk: Path, capsys) -> None:
    """ENOSPC tested on a real 1 MiB tmpfs: the free-space floor refuses first; a write past it is one line."""
    from genemask.atomic import atomic_dir
    from genemask.errors import UserError

    assert main(["chunk", "--fasta", str(ws / "genome.fa"), "--out", str(tiny_disk / "chunks")]) == 2
    assert "MiB free" in one_line_error(capsys, "chunk")
    with (
        pytest.raises(UserError, match="No space left on device") as error,
        atomic_dir(tiny_disk / "x") as tmp,
    ):
        (tmp / "big").write_bytes(b"\0" * (2 << 20))
    assert "\n" not in str(error.value)
    assert list(tiny_disk.iterdir()) == []


def test_a_read_only_out_is_refused_before_training(ws: Path, tiny_disk: Path, capsys) -> None:
    import subprocess

    subprocess.run(["mount", "-o", "remount,ro", str(tiny_disk)], check=True)
    argv = [a.format(ws=ws, d=tiny_disk) for a in PRETRAIN]
    argv[argv.index("--checkpoint-dir") + 1] = str(tiny_disk.parent / "ckpt")

    assert main(argv) == 2

    assert "Read-only file system" in one_line_error(capsys, "pretrain")
    assert not (tiny_disk.parent / "ckpt").exists()


def test_kmer_baseline_k3_takes_sequences_shorter_than_a_6mer(tmp_path: Path) -> None:
    task_file(tmp_path / "train.tsv", length=5, labels=(0, 1) * 4)
    task_file(tmp_path / "test.tsv", length=5, labels=(0, 1) * 4, seed=1)
    argv = ["kmer-baseline", "--train", str(tmp_path / "train.tsv"), "--test", str(tmp_path / "test.tsv"),
            "--task", "tiny", "--shots", "4", "--k", "3", "--out", str(tmp_path / "run.json")]  # fmt: skip
    assert main(argv) == 0
    assert json.loads((tmp_path / "run.json").read_text())["metrics"]["accuracy"] is not None


def test_an_unknown_hub_model_offline_fails_fast_in_one_line(ws: Path, tmp_path: Path, monkeypatch, capsys):
    import time

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    argv = [a.format(ws=ws, d=tmp_path) for a in FINETUNE]
    argv[argv.index("--model") + 1 : argv.index("--model") + 3] = ["nosuchorg/nosuchmodel"]
    started = time.perf_counter()
    assert main(argv) == 2
    assert time.perf_counter() - started < 10
    assert "not in the Hugging Face cache, and HF_HUB_OFFLINE is set" in one_line_error(capsys, "finetune")


def test_a_run_killed_mid_swap_gets_its_old_output_back(tmp_path: Path, capsys) -> None:
    """Killed between `old -> backup` and `new -> target`: the next write restores the backup, then replaces it."""
    import subprocess
    import sys

    from genemask.atomic import MARKER, atomic_dir

    dead = subprocess.run([sys.executable, "-c", "print(__import__('os').getpid())"], capture_output=True)
    backup = tmp_path / f".out.{socket.gethostname()}-{int(dead.stdout)}.abcd1234.old"
    backup.mkdir()
    (backup / MARKER).write_text(json.dumps({"format": 1, "entries": ["a.txt"]}))
    (backup / "a.txt").write_text("old output\n")
    (backup / "notes.txt").write_text("the user's\n")

    with atomic_dir(tmp_path / "out") as tmp:
        (tmp / "b.txt").write_text("new output\n")

    assert "restored" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [MARKER, "b.txt", "notes.txt"]
