"""`genemask.genome.download` against a real HTTP server on 127.0.0.1 that drops, stalls, fails and serves ranges."""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import re
import socket
import struct
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from genemask.cli import main
from genemask.errors import UserError
from genemask.genome.download import (
    download,
    md5_from_listing,
    partial_path,
    source_path,
    url_basename,
)
from genemask.genome.fasta import read_fasta

HG38_SLICE = (Path(__file__).parents[1] / "../shared/data/hg38_slice/chr2_1-2333275.fa.gz").resolve()
HG38_SLICE_MD5 = "e4738789a1507c053f97f1caa2ebed76"  # from the data set's README
FAST = {"backoff": 0.01, "progress": False}


@dataclass(frozen=True)
class Drop:
    """Send the headers and `after` body bytes, then close the connection: cleanly (`eof`) or by TCP RST."""

    after: int
    how: str = "eof"


@dataclass(frozen=True)
class Status:
    code: int


@dataclass(frozen=True)
class Stall:
    """Accept the request, then say nothing for `seconds`."""

    seconds: float


@dataclass
class Logged:
    path: str
    headers: dict[str, str]
    status: int = 0
    body_bytes: int = 0


@dataclass
class Server:
    httpd: ThreadingHTTPServer
    files: dict[str, bytes] = field(default_factory=dict)
    # Per path, what to do on the next requests, in order; once empty, serve normally.
    plan: defaultdict[str, deque] = field(default_factory=lambda: defaultdict(deque))
    ignore_range: bool = False
    honor_if_range: bool = True
    send_length: bool = True  # False: no Content-Length, the body ends when the connection closes
    log: list[Logged] = field(default_factory=list)

    def url(self, path: str) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/{path}"

    def requests(self, path: str) -> list[Logged]:
        return [entry for entry in self.log if entry.path == path]


class Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        server: Server = self.server.owner  # type: ignore[attr-defined]
        path = self.path.lstrip("/")
        entry = Logged(path, dict(self.headers))
        server.log.append(entry)
        action = server.plan[path].popleft() if server.plan[path] else None

        if isinstance(action, Stall):
            time.sleep(action.seconds)
            self.close_connection = True
            return
        if isinstance(action, Status) or path not in server.files:
            entry.status = action.code if isinstance(action, Status) else 404
            self.send_response(entry.status)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return

        data = server.files[path]
        etag = f'"{hashlib.md5(data).hexdigest()}"'
        start = 0
        requested = self.headers.get("Range")
        if_range = self.headers.get("If-Range")
        if if_range is not None and if_range != etag and server.honor_if_range:
            requested = None  # the file changed: RFC 9110 says send all of it
        if requested and not server.ignore_range:
            start = int(re.fullmatch(r"bytes=(\d+)-", requested).group(1))
            if start >= len(data):
                entry.status = 416
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            entry.status = 206
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            entry.status = 200
            self.send_response(200)
        body = data[start:]
        self.send_header("ETag", etag)
        if server.send_length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()

        if isinstance(action, Drop):
            body = body[: action.after]
        entry.body_bytes = len(body)  # before writing: the client may finish before this thread resumes
        self.wfile.write(body)
        if isinstance(action, Drop):
            self.close_connection = True
            if action.how == "reset":
                time.sleep(0.05)  # let the client read the bytes first: a RST discards unread data
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.rfile.close()
                self.connection.close()


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("no_proxy", "127.0.0.1")  # talk to the local server directly, whatever the environment
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state = Server(httpd)
    httpd.owner = state  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@functools.cache
def generated_fasta_gz(seed: int = 0, length: int = 300_000) -> bytes:
    """A gzipped FASTA of random ACGT with a few N runs, 60 bases per line."""
    rng = np.random.default_rng(seed)
    seq = np.frombuffer(b"ACGT", dtype=np.uint8)[rng.integers(0, 4, length)].copy()
    seq[1000:1500] = ord("N")
    lines = [seq[i : i + 60].tobytes() for i in range(0, length, 60)]
    return gzip.compress(b">chrSim\n" + b"\n".join(lines) + b"\n", mtime=0)


@pytest.fixture(params=["generated", "hg38_slice"])
def genome(request: pytest.FixtureRequest) -> tuple[str, bytes]:
    """(file name, bytes) of the genome to serve: generated, or the real hg38 slice as is."""
    if request.param == "generated":
        return "sim.fa.gz", generated_fasta_gz()
    if not HG38_SLICE.exists():
        pytest.skip(f"shared data absent: {HG38_SLICE}")
    return HG38_SLICE.name, HG38_SLICE.read_bytes()


def serve_with_md5sum(server: Server, name: str, data: bytes) -> str:
    """Serve `data` as `name` with a UCSC-style md5sum.txt beside it; return the md5sum.txt URL."""
    server.files[name] = data
    server.files["md5sum.txt"] = (
        f"{hashlib.md5(b'other').hexdigest()}  other.fa.gz\n{hashlib.md5(data).hexdigest()}  {name}\n"
    ).encode()
    return server.url("md5sum.txt")


@pytest.mark.parametrize("how", ["eof", "reset"])
def test_dropped_connection_is_resumed_with_a_range_request(
    server: Server, genome: tuple[str, bytes], how: str, tmp_path: Path
) -> None:
    name, data = genome
    checksum_url = serve_with_md5sum(server, name, data)
    cut = len(data) // 3 + 7
    server.plan[name].append(Drop(cut, how))
    out = tmp_path / "genome" / name

    assert download(server.url(name), out, checksum_url=checksum_url, **FAST) == out

    assert out.read_bytes() == data
    assert not partial_path(out).exists()
    first, second = server.requests(name)
    assert "Range" not in first.headers and first.body_bytes == cut
    assert second.headers["Range"] == f"bytes={cut}-"
    assert second.status == 206 and second.body_bytes == len(data) - cut
    if name == HG38_SLICE.name:
        assert hashlib.md5(out.read_bytes()).hexdigest() == HG38_SLICE_MD5
        (contig,) = read_fasta(out)
        assert (contig.name, len(contig.seq)) == ("chr2", 2_333_275)


def test_truncated_body_is_detected_by_content_length(server: Server, tmp_path: Path) -> None:
    data = generated_fasta_gz(seed=1)
    server.files["g.fa.gz"] = data
    server.plan["g.fa.gz"].extend([Drop(1000), Drop(len(data) // 2)])
    out = tmp_path / "g.fa.gz"

    download(server.url("g.fa.gz"), out, **FAST)  # no checksum: only Content-Length reveals the truncation

    assert out.read_bytes() == data
    resumed_at = [r.headers.get("Range") for r in server.requests("g.fa.gz")]
    assert resumed_at == [None, "bytes=1000-", f"bytes={1000 + len(data) // 2}-"]


def leave_part(out: Path, url: str, part: bytes, remote: bytes | None, **record: object) -> None:
    """What an interrupted run leaves: `part` in OUT.part, and OUT.part.json naming its URL and remote file."""
    partial_path(out).write_bytes(part)
    if remote is not None:
        record = {"length": len(remote), "etag": f'"{hashlib.md5(remote).hexdigest()}"'} | record
    source_path(out).write_text(json.dumps({"url": url, "last_modified": None} | record))


def test_existing_part_file_is_resumed(server: Server, tmp_path: Path) -> None:
    data = generated_fasta_gz(seed=2)
    server.files["g.fa.gz"] = data
    out = tmp_path / "g.fa.gz"
    kept = len(data) // 2 + 1
    leave_part(out, server.url("g.fa.gz"), data[:kept], data)

    download(server.url("g.fa.gz"), out, md5=hashlib.md5(data).hexdigest(), **FAST)

    assert out.read_bytes() == data
    assert sorted(tmp_path.iterdir()) == [out]
    (request,) = server.requests("g.fa.gz")
    assert request.headers["Range"] == f"bytes={kept}-"
    assert request.headers["If-Range"] == f'"{hashlib.md5(data).hexdigest()}"'
    assert request.body_bytes == len(data) - kept


def test_interrupted_run_leaves_a_part_that_the_next_run_resumes(server: Server, tmp_path: Path) -> None:
    data = generated_fasta_gz(seed=12)
    server.files["g.fa.gz"] = data
    server.plan["g.fa.gz"].append(Drop(5000))
    out = tmp_path / "g.fa.gz"
    with pytest.raises(UserError, match="gave up after 0 retries"):
        download(server.url("g.fa.gz"), out, retries=0, **FAST)
    assert partial_path(out).stat().st_size == 5000 and not out.exists()

    download(server.url("g.fa.gz"), out, **FAST)

    assert out.read_bytes() == data
    assert [r.headers.get("Range") for r in server.requests("g.fa.gz")] == [None, "bytes=5000-"]


@pytest.mark.parametrize("record", ["another URL", "none"])
def test_a_part_of_another_file_is_never_spliced(server: Server, tmp_path: Path, record: str) -> None:
    data, other = generated_fasta_gz(seed=13), generated_fasta_gz(seed=14)
    server.files["g.fa.gz"] = data
    out = tmp_path / "g.fa.gz"
    if record == "none":
        partial_path(out).write_bytes(other[:7000])  # e.g. left by an older version
    else:
        leave_part(out, server.url("other.fa.gz"), other[:7000], other)

    download(server.url("g.fa.gz"), out, **FAST)  # no checksum: nothing else would notice a splice

    assert out.read_bytes() == data
    assert [r.headers.get("Range") for r in server.requests("g.fa.gz")] == [None]


@pytest.mark.parametrize("honor_if_range", [True, False])
def test_a_part_of_a_remote_file_since_replaced_is_restarted(
    server: Server, tmp_path: Path, honor_if_range: bool
) -> None:
    old = generated_fasta_gz(seed=15)
    new = (
        old[:50_000] + bytes([old[50_000] ^ 1]) + old[50_001:]
    )  # same length: only the ETag tells them apart
    server.files["g.fa.gz"] = new
    server.honor_if_range = honor_if_range
    out = tmp_path / "g.fa.gz"
    leave_part(out, server.url("g.fa.gz"), old[:9000], old)

    download(server.url("g.fa.gz"), out, **FAST)

    assert out.read_bytes() == new
    statuses = [r.status for r in server.requests("g.fa.gz")]
    assert statuses == ([200] if honor_if_range else [206, 200])


def test_an_early_close_without_a_length_is_resumed(server: Server, tmp_path: Path) -> None:
    data = generated_fasta_gz(seed=17)
    server.files["g.fa.gz"] = data
    server.send_length = False
    server.plan["g.fa.gz"].append(Drop(3000))
    out = tmp_path / "g.fa.gz"

    download(server.url("g.fa.gz"), out, **FAST)  # no checksum either

    assert out.read_bytes() == data
    assert [(r.headers.get("Range"), r.status) for r in server.requests("g.fa.gz")] == [
        (None, 200),
        ("bytes=3000-", 206),  # asked whether anything follows: yes, and Content-Range says how much
    ]


def test_a_complete_body_without_a_length_is_confirmed(server: Server, tmp_path: Path) -> None:
    data = generated_fasta_gz(seed=18)
    server.files["g.fa.gz"] = data
    server.send_length = False
    out = tmp_path / "g.fa.gz"

    download(server.url("g.fa.gz"), out, **FAST)

    assert out.read_bytes() == data
    assert [r.status for r in server.requests("g.fa.gz")] == [200, 416]


def test_an_unverifiable_end_is_an_error_not_a_file(server: Server, tmp_path: Path) -> None:
    data = generated_fasta_gz(seed=19)
    server.files["g.fa.gz"] = data
    server.send_length, server.ignore_range = False, True
    server.plan["g.fa.gz"].append(Drop(3000))
    out = tmp_path / "g.fa.gz"

    with pytest.raises(UserError, match="announced no length and ignores range requests.*--md5"):
        download(server.url("g.fa.gz"), out, **FAST)

    assert list(tmp_path.iterdir()) == []
    download(server.url("g.fa.gz"), out, md5=hashlib.md5(data).hexdigest(), **FAST)  # a checksum vouches
    assert out.read_bytes() == data


def test_out_naming_a_directory_is_refused_up_front(server: Server, tmp_path: Path) -> None:
    server.files["g.fa.gz"] = b"data"
    (tmp_path / "genome").mkdir()

    with pytest.raises(UserError, match="genome: is a directory"):
        download(server.url("g.fa.gz"), tmp_path / "genome", **FAST)

    assert [p.name for p in tmp_path.iterdir()] == ["genome"] and server.requests("g.fa.gz") == []


def test_complete_part_file_is_finished_on_416(server: Server, tmp_path: Path) -> None:
    data = generated_fasta_gz(seed=3)
    server.files["g.fa.gz"] = data
    out = tmp_path / "g.fa.gz"
    leave_part(out, server.url("g.fa.gz"), data, data)

    download(server.url("g.fa.gz"), out, md5=hashlib.md5(data).hexdigest(), **FAST)

    assert out.read_bytes() == data
    assert [r.status for r in server.requests("g.fa.gz")] == [416]


def test_part_file_longer_than_remote_is_restarted(server: Server, tmp_path: Path) -> None:
    data = generated_fasta_gz(seed=4)
    server.files["g.fa.gz"] = data
    out = tmp_path / "g.fa.gz"
    leave_part(out, server.url("g.fa.gz"), data + b"stale tail", None, length=len(data) + 10, etag=None)

    download(server.url("g.fa.gz"), out, **FAST)

    assert out.read_bytes() == data
    assert [r.status for r in server.requests("g.fa.gz")] == [416, 200]


def test_server_ignoring_range_restarts_from_zero(server: Server, tmp_path: Path) -> None:
    data = generated_fasta_gz(seed=5)
    server.files["g.fa.gz"] = data
    server.ignore_range = True
    out = tmp_path / "g.fa.gz"
    # A wrong prefix: had it been kept, the result could not equal `data`.
    leave_part(out, server.url("g.fa.gz"), b"x" * 5000, None, length=None, etag=None)

    download(server.url("g.fa.gz"), out, md5=hashlib.md5(data).hexdigest(), **FAST)

    assert out.read_bytes() == data
    (request,) = server.requests("g.fa.gz")
    assert request.headers["Range"] == "bytes=5000-" and request.status == 200


@pytest.mark.parametrize("source", ["md5", "checksum_url"])
def test_checksum_mismatch_leaves_no_output_nor_part(server: Server, source: str, tmp_path: Path) -> None:
    data = generated_fasta_gz(seed=6)
    server.files["g.fa.gz"] = data
    wrong = hashlib.md5(b"not the genome").hexdigest()
    server.files["md5sum.txt"] = f"{wrong}  g.fa.gz\n".encode()
    checksum = {"md5": wrong} if source == "md5" else {"checksum_url": server.url("md5sum.txt")}
    out = tmp_path / "g.fa.gz"
    server.plan["g.fa.gz"].append(Drop(10_000))  # the resumed file is what gets verified

    with pytest.raises(UserError) as raised:
        download(server.url("g.fa.gz"), out, **checksum, **FAST)

    message = str(raised.value)
    assert "\n" not in message
    assert str(out) in message and wrong in message and hashlib.md5(data).hexdigest() in message
    assert list(tmp_path.iterdir()) == []


def test_transient_5xx_and_stalls_are_retried(server: Server, tmp_path: Path) -> None:
    data = generated_fasta_gz(seed=7)
    server.files["g.fa.gz"] = data
    server.plan["g.fa.gz"].extend([Status(503), Stall(0.5), Status(500)])
    out = tmp_path / "g.fa.gz"

    download(server.url("g.fa.gz"), out, md5=hashlib.md5(data).hexdigest(), retries=3, timeout=0.1, **FAST)

    assert out.read_bytes() == data
    assert len(server.requests("g.fa.gz")) == 4


def test_retries_are_bounded(server: Server, tmp_path: Path) -> None:
    server.files["g.fa.gz"] = b"unused"
    server.plan["g.fa.gz"].extend([Status(502)] * 10)
    out = tmp_path / "g.fa.gz"

    started = time.perf_counter()
    with pytest.raises(UserError, match=r"HTTP 502 .*gave up after 2 retries"):
        download(server.url("g.fa.gz"), out, retries=2, **FAST)

    assert len(server.requests("g.fa.gz")) == 3
    # Exponential backoff: 0.01 + 0.02 seconds of sleep.
    assert time.perf_counter() - started >= 0.03
    assert not out.exists()


@pytest.mark.parametrize("code", [404, 403, 410])
def test_client_errors_are_permanent(server: Server, code: int, tmp_path: Path) -> None:
    server.plan["g.fa.gz"].append(Status(code))
    url = server.url("g.fa.gz")

    with pytest.raises(UserError) as raised:
        download(url, tmp_path / "g.fa.gz", **FAST)

    assert str(raised.value).startswith(f"{url}: download failed: HTTP {code} ")
    assert len(server.requests("g.fa.gz")) == 1  # not retried


def test_cli_reports_404_on_one_line(
    server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = server.url("missing.fa.gz")

    code = main(["download", "--url", url, "--out", str(tmp_path / "g.fa.gz")])

    assert code == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("genemask download: error: ") and url in lines[0] and "HTTP 404" in lines[0]
    assert list(tmp_path.iterdir()) == []


def test_cli_downloads_and_verifies_with_an_ncbi_listing(server: Server, tmp_path: Path) -> None:
    data = generated_fasta_gz(seed=8)
    name = "GCF_000001405.39_GRCh38.p13_genomic.fna.gz"
    server.files[name] = data
    server.files["md5checksums.txt"] = (
        f"{hashlib.md5(b'report').hexdigest()}  ./GCF_000001405.39_GRCh38.p13_assembly_report.txt\n"
        f"{hashlib.md5(data).hexdigest()}  ./{name}\n"
    ).encode()
    out = tmp_path / "genome.fna.gz"

    code = main(
        ["download", "--url", server.url(name), "--out", str(out)]
        + ["--checksum-url", server.url("md5checksums.txt")]
    )

    assert code == 0
    assert out.read_bytes() == data


def test_checksum_listing_without_an_entry_is_a_user_error(server: Server, tmp_path: Path) -> None:
    server.files["g.fa.gz"] = b"data"
    server.files["md5sum.txt"] = f"{hashlib.md5(b'data').hexdigest()}  other.fa.gz\n".encode()

    with pytest.raises(UserError, match=r"md5sum.txt: no md5 entry for 'g.fa.gz'"):
        download(server.url("g.fa.gz"), tmp_path / "g.fa.gz", checksum_url=server.url("md5sum.txt"), **FAST)

    assert server.requests("g.fa.gz") == []  # checked before downloading anything


def test_md5_listing_formats() -> None:
    ucsc = (
        "0123456789abcdef0123456789abcdef  hg38.fa.gz\nfedcba9876543210fedcba9876543210  hg38.fa.masked.gz\n"
    )
    ncbi = "# comment line\nABCDEF0123456789ABCDEF0123456789  ./GCF_1_genomic.fna.gz\n"
    binary = "00000000000000000000000000000001 *hg38.fa.gz\n"

    assert md5_from_listing(ucsc, "hg38.fa.gz", "md5sum.txt") == "0123456789abcdef0123456789abcdef"
    assert md5_from_listing(ucsc, "hg38.fa.masked.gz", "md5sum.txt") == "fedcba9876543210fedcba9876543210"
    assert md5_from_listing(ncbi, "GCF_1_genomic.fna.gz", "x") == "abcdef0123456789abcdef0123456789"
    assert md5_from_listing(binary, "hg38.fa.gz", "x") == "00000000000000000000000000000001"
    with pytest.raises(UserError, match=r"md5sum.txt: no md5 entry for 'hg38.fa'"):
        md5_from_listing(ucsc, "hg38.fa", "md5sum.txt")
    with pytest.raises(UserError, match=r"sums line 1: expected 32 hexadecimal digits, got 'xyz'"):
        md5_from_listing("xyz  hg38.fa.gz\n", "hg38.fa.gz", "sums")


def test_url_basename() -> None:
    assert url_basename("https://host/goldenPath/hg38/bigZips/hg38.fa.gz") == "hg38.fa.gz"
    assert url_basename("https://host/a/my%20genome.fa.gz?x=1") == "my genome.fa.gz"


@pytest.mark.parametrize(
    ("url", "options", "expected"),
    [
        ("ftp://host/g.fa.gz", {}, "expected an http:// or https:// URL"),
        ("g.fa.gz", {}, "expected an http:// or https:// URL"),
        ("http://127.0.0.1:9/g.fa.gz", {"md5": "abc"}, "expected 32 hexadecimal digits"),
        ("http://127.0.0.1:9/g.fa.gz", {"md5": "0" * 32, "checksum_url": "http://127.0.0.1:9/s"}, "not both"),
        ("http://127.0.0.1:9/g.fa.gz", {"retries": -1}, "retries must be >= 0"),
    ],
)
def test_bad_arguments_are_user_errors(url: str, options: dict, expected: str, tmp_path: Path) -> None:
    with pytest.raises(UserError, match=expected):
        download(url, tmp_path / "g.fa.gz", **options)
    assert list(tmp_path.iterdir()) == []
