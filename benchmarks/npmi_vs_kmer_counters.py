"""`genemask npmi` against the standard k-mer counters, KMC and Jellyfish, measured in one run.

Input: E. coli K-12 MG1655 (../shared/data/other_genomes), decompressed and concatenated 20 times (~93 Mbp;
each copy's header gets a `_copyI` suffix, since genemask rejects duplicate record names). All tools use the
same plain FASTA and the same thread count (2). The baselines count only 10-mers:

    jellyfish count -m 10 -s 100M -t T      kmc -k10 -tT -fm -ci1

`genemask npmi` does the whole stage: every n-gram for n <= 10, PMI_n, NPMI, and its three output files.
Bar: genemask takes no longer than KMC, and KMC is at least 3x faster than Jellyfish.

Install the baselines with `apt-get install jellyfish kmc` (Debian); this script installs nothing and
skips (exit 0, printing why) when a tool or the data is absent.

Method: one untimed warm-up run of every tool (page cache, Python bytecode), then best of 3 rounds with the
tools interleaved, so that load from other processes hits them alike. genemask's hot loop is a C extension
compiled at install time (`make setup`): no timed run compiles anything. Wall time is the whole process
(interpreter start-up and imports included); peak RSS is the process's ru_maxrss from wait4.
genemask runs twice: through the `genemask` CLI as is, and through its own subcommand module only (what
the CLI costs if it imports just the subcommand it runs), to separate this stage from the CLI's start-up.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "other_genomes" / "ecoli_k12_mg1655"
STAGE_ONLY = (
    "import argparse, sys\n"
    "from genemask.commands import npmi\n"
    "parser = argparse.ArgumentParser(prog='genemask')\n"
    "npmi.register(parser.add_subparsers(dest='command', required=True))\n"
    "args = parser.parse_args(sys.argv[1:])\n"
    "sys.exit(args.func(args))\n"
)


def skip(reason: str) -> None:
    print(f"SKIP npmi_vs_kmer_counters: {reason}")
    sys.exit(0)


def build_input(source: Path, copies: int, target: Path) -> int:
    """Write the concatenated FASTA; returns its ACGT bases."""
    text = gzip.decompress(source.read_bytes())
    header, _, body = text.partition(b"\n")
    name, _, description = header[1:].partition(b" ")
    with target.open("wb") as out:
        for copy in range(1, copies + 1):
            out.write(b">" + name + b"_copy%d " % copy + description + b"\n" + body)
    return copies * len(re.sub(rb"[^ACGTacgt]", b"", body))


def run(command: list[str]) -> tuple[float, float, str]:
    """(wall seconds, peak RSS in MiB, output) of one run, reaped with wait4 to read its own peak RSS."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    process.stdout.close()
    if process.returncode:
        sys.exit(f"failed ({process.returncode}): {' '.join(command)}\n{output.decode(errors='replace')}")
    return wall, usage.ru_maxrss / 1024, output.decode(errors="replace")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--copies", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    sources = sorted(DATA.glob("*.fna.gz"))
    if not sources:
        skip(f"data absent: {DATA}/*.fna.gz")
    missing = [tool for tool in ("jellyfish", "kmc") if shutil.which(tool) is None]
    if missing:
        skip(f"{' and '.join(missing)} not installed (Debian: apt-get install jellyfish kmc)")

    threads = str(args.threads)
    with tempfile.TemporaryDirectory(prefix="npmi_bench_") as tmp:
        work = Path(tmp)
        fasta = work / f"ecoli_x{args.copies}.fa"
        bases = build_input(sources[0], args.copies, fasta)
        (work / "kmc_tmp").mkdir()
        npmi_args = ["npmi", "--fasta", str(fasta), "--out", str(work / "npmi"), "--max-n", "10"]
        npmi_args += ["--min-count", "101", "--threads", threads]
        kmc = [
            "kmc",
            "-k10",
            f"-t{threads}",
            "-fm",
            "-ci1",
            str(fasta),
            str(work / "kmc"),
            str(work / "kmc_tmp"),
        ]
        jellyfish = [
            "jellyfish",
            "count",
            "-m",
            "10",
            "-s",
            "100M",
            "-t",
            threads,
            "-o",
            str(work / "counts.jf"),
        ]
        tools = {
            "genemask npmi (CLI)": [sys.executable, "-m", "genemask", *npmi_args],
            "genemask npmi (own module)": [sys.executable, "-c", STAGE_ONLY, *npmi_args],
            "kmc": kmc,
            "jellyfish": [*jellyfish, str(fasta)],
        }
        print(
            f"input: {fasta.name}, {args.copies} copies of {sources[0].name}, {bases:,} ACGT bases; threads {threads}"
        )
        print("warm-up: one untimed run of each tool; then best of", args.rounds, "interleaved rounds")
        outputs = {name: run(command)[2] for name, command in tools.items()}
        walls: dict[str, list[float]] = {name: [] for name in tools}
        peaks: dict[str, float] = {name: 0.0 for name in tools}
        for _ in range(args.rounds):
            for name, command in tools.items():
                wall, peak, _ = run(command)
                walls[name].append(wall)
                peaks[name] = max(peaks[name], peak)
        summary = json.loads((work / "npmi" / "summary.json").read_text())

    best = {name: min(values) for name, values in walls.items()}
    print(f"\n{'tool':<28} {'best s':>7} {'runs s':<22} {'Mbp/s':>7} {'peak RSS MiB':>13}")
    for name in tools:
        runs = " ".join(f"{wall:.2f}" for wall in walls[name])
        print(f"{name:<28} {best[name]:7.3f} {runs:<22} {bases / best[name] / 1e6:7.1f} {peaks[name]:13.0f}")

    kmc_total = re.search(r"Total no\. of k-mers\s*:\s*(\d+)", outputs["kmc"])
    kmc_total = f"{int(kmc_total.group(1)):,}" if kmc_total else "not reported"
    print(f"\n10-mer occurrences: genemask {summary['per_n'][9]['total']:,}, kmc {kmc_total}")
    print(f"ACGT bases counted by genemask: {summary['bases_acgt']:,} (input {bases:,})")

    kmc_vs_jellyfish = best["kmc"] / best["jellyfish"]
    print(
        f"\nratio kmc / jellyfish: {kmc_vs_jellyfish:.3f} (bar: <= 0.333, KMC at least 3x faster) "
        f"{'PASS' if kmc_vs_jellyfish <= 1 / 3 else 'FAIL'}"
    )
    for name in ("genemask npmi (CLI)", "genemask npmi (own module)"):
        ratio = best[name] / best["kmc"]
        print(f"ratio {name} / kmc: {ratio:.3f} (bar: <= 1.0) {'PASS' if ratio <= 1 else 'FAIL'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
