"""Peak memory and time of `genemask chunk` on one large synthetic contig (default 250 Mbp).

Baseline, measured in the same run: reading the same FASTA with `genemask.genome.fasta.read_fasta` alone. The issue's
bar is about 3 GB RSS for a 250 Mbp contig.

    .venv/bin/python benchmarks/chunk_memory.py [--length 250000000]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

READ_ONLY = (
    "from genemask.genome.fasta import read_fasta\nimport sys\nfor c in read_fasta(sys.argv[1]): pass\n"
)


def write_contig(path: Path, length: int, seed: int = 0) -> None:
    """A 60-column FASTA with N runs and lower case, written in blocks."""
    rng = np.random.default_rng(seed)
    letters = np.frombuffer(b"ACGTacgt", np.uint8)
    line = 60
    block_lines = 1_000_000
    with path.open("wb") as handle:
        handle.write(b">chrBig\n")
        written = 0
        while written < length:
            n = min(block_lines * line, length - written)
            seq = letters[rng.integers(0, 8, n)]
            if rng.random() < 0.5:  # an assembly gap now and then
                start = int(rng.integers(0, max(1, n - 50_000)))
                seq[start : start + 50_000] = ord("N")
            full, rest = divmod(n, line)
            body = np.concatenate(
                (seq[: full * line].reshape(full, line), np.full((full, 1), 10, np.uint8)), axis=1
            )
            handle.write(body.tobytes())
            if rest:
                handle.write(seq[full * line :].tobytes() + b"\n")
            written += n


def measure(command: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (GiB) of a child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if peak_kib <= before:
        print("warning: peak RSS not above an earlier child's; run the measurements in separate processes")
    return seconds, peak_kib / 2**20


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", type=int, default=250_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        fasta = Path(tmp) / "big.fa"
        write_contig(fasta, args.length)
        # Children are measured in separate interpreter processes so ru_maxrss is per measurement.
        chunk_cmd = [
            sys.executable,
            "-m",
            "genemask",
            "chunk",
            "--fasta",
            str(fasta),
            "--out",
            f"{tmp}/chunks",
        ]
        read_cmd = [sys.executable, "-c", READ_ONLY, str(fasta)]
        read_s, read_gib = _isolated(read_cmd)
        chunk_s, chunk_gib = _isolated(chunk_cmd)
    mbp = args.length / 1e6
    print(f"contig: {mbp:.0f} Mbp, one record")
    print(f"baseline read_fasta: {read_s:6.1f} s  peak RSS {read_gib:5.2f} GiB")
    print(
        f"genemask chunk:      {chunk_s:6.1f} s  peak RSS {chunk_gib:5.2f} GiB  ({mbp / chunk_s:.1f} Mbp/s)"
    )
    print(f"ratio chunk/read: time {chunk_s / read_s:.2f}x, memory {chunk_gib / read_gib:.2f}x")
    print(
        f"bar: peak RSS <= 3 GB for 250 Mbp -> {'PASS' if chunk_gib * 2**30 / 1e9 <= 3 * mbp / 250 else 'FAIL'}"
    )
    return 0


def _isolated(command: list[str]) -> tuple[float, float]:
    """Run `measure` in a fresh process so RUSAGE_CHILDREN holds this command alone."""
    code = (
        "import sys, json; sys.path.insert(0, sys.argv[1]); from chunk_memory import measure; "
        "print(json.dumps(measure(json.loads(sys.argv[2]))))"
    )
    import json

    out = subprocess.run(
        [sys.executable, "-c", code, str(Path(__file__).parent), json.dumps(command)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    seconds, gib = json.loads(out.strip().splitlines()[-1])
    return seconds, gib


if __name__ == "__main__":
    sys.exit(main())
