"""Download a genome over HTTP(S): streamed, resumed after interruptions, md5-verified, renamed atomically.

The bytes go to `<out>.part`; a dropped connection, a timeout or a 5xx answer is retried with exponential
backoff, resuming the partial file with an HTTP `Range` request. Only a complete, verified file is renamed
onto `out`; a checksum mismatch removes the partial file too, so that the next run starts clean.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import TypeVar

from tqdm import tqdm

from genemask import __version__
from genemask.atomic import check_output_file
from genemask.errors import UserError

CHUNK_SIZE = 1 << 20
USER_AGENT = f"genemask/{__version__} (Python urllib)"
# Client errors worth retrying: the server asks us to come back later.
RETRYABLE_4XX = frozenset({408, 425, 429})
# Everything that can go wrong on the wire: socket errors (URLError is an OSError) and broken HTTP framing.
NETWORK_ERRORS = (OSError, http.client.HTTPException)

_MD5_HEX = re.compile(r"[0-9a-fA-F]{32}")
_CONTENT_RANGE = re.compile(r"bytes\s+(?:(\d+)-(\d+)|\*)/(\d+|\*)")

T = TypeVar("T")


class TransientError(Exception):
    """A failure worth retrying; `made_progress` says whether bytes were saved before it happened."""

    def __init__(self, message: str, made_progress: bool = False) -> None:
        super().__init__(message)
        self.made_progress = made_progress


class RangeNotSatisfiable(Exception):
    """HTTP 416 to a resume request: the partial file is at least as long as the remote file."""

    def __init__(self, remote_size: int | None) -> None:
        super().__init__(f"range not satisfiable (remote size {remote_size})")
        self.remote_size = remote_size


def download(
    url: str,
    out: Path,
    *,
    checksum_url: str | None = None,
    md5: str | None = None,
    retries: int = 5,
    backoff: float = 1.0,
    timeout: float = 60,
    progress: bool = True,
) -> Path:
    """Download `url` to `out`, resuming and retrying; verify its md5 if given or listed; return `out`.

    `md5` is the expected hex digest; alternatively `checksum_url` points to a UCSC `md5sum.txt` or NCBI
    `md5checksums.txt` listing, whose entry for the URL's file name is used. `retries` is the number of
    consecutive failed attempts tolerated (an attempt that saved bytes resets the count), waiting
    `backoff * 2**k` seconds before the k-th retry. `timeout` applies to every socket operation.
    """
    out = check_output_file(out, "--out")
    _check_http_url(url)
    if retries < 0:
        raise UserError(f"retries must be >= 0, got {retries}")
    if md5 is not None and checksum_url is not None:
        raise UserError("give either an md5 or a checksum URL, not both")
    if md5 is not None:
        expected_md5 = _checked_md5(md5, f"md5 for {url}")
    elif checksum_url is not None:
        _check_http_url(checksum_url)
        listing = _retrying(lambda: _fetch_text(checksum_url, timeout), checksum_url, retries, backoff)
        expected_md5 = md5_from_listing(listing, url_basename(url), checksum_url)
    else:
        expected_md5 = None

    out.parent.mkdir(parents=True, exist_ok=True)
    part = partial_path(out)
    with tqdm(
        desc=out.name, unit="B", unit_scale=True, unit_divisor=1024, disable=None if progress else True
    ) as bar:
        _retrying(lambda: _fetch_into(url, part, timeout, bar), url, retries, backoff)

    if expected_md5 is not None:
        actual_md5 = file_md5(part)
        if actual_md5 != expected_md5:
            part.unlink()
            raise UserError(
                f"{out}: md5 mismatch for {url}: expected {expected_md5}, got {actual_md5} "
                "(partial download removed; rerun to download again)"
            )
    os.replace(part, out)
    return out


def partial_path(out: Path) -> Path:
    """Where the bytes of `out` accumulate until the download is complete and verified."""
    return out.with_name(out.name + ".part")


def url_basename(url: str) -> str:
    """The file name at the end of the URL's path (percent-decoded), as checksum listings name it."""
    return PurePosixPath(urllib.parse.unquote(urllib.parse.urlsplit(url).path)).name


def md5_from_listing(text: str, filename: str, source: str) -> str:
    """The md5 listed for `filename` in an `md5sum` style listing (`<md5>  <name>` or `<md5>  ./<name>`)."""
    for line_number, line in enumerate(text.splitlines(), start=1):
        fields = line.strip().split(maxsplit=1)
        if len(fields) != 2:
            continue
        digest, name = fields
        # md5sum writes `*name` for files hashed in binary mode; NCBI prefixes `./`.
        name = name.removeprefix("*").removeprefix("./")
        if name == filename:
            return _checked_md5(digest, f"{source} line {line_number}")
    raise UserError(f"{source}: no md5 entry for {filename!r} (expected a line '<md5>  {filename}')")


def file_md5(path: Path) -> str:
    digest = hashlib.md5()
    with path.open("rb") as handle:
        while block := handle.read(CHUNK_SIZE):
            digest.update(block)
    return digest.hexdigest()


def _check_http_url(url: str) -> None:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UserError(f"{url!r}: expected an http:// or https:// URL")


def _checked_md5(digest: str, where: str) -> str:
    if not _MD5_HEX.fullmatch(digest):
        raise UserError(f"{where}: expected 32 hexadecimal digits, got {digest!r}")
    return digest.lower()


def _retrying(attempt: Callable[[], T], url: str, retries: int, backoff: float) -> T:
    """Call `attempt` until it succeeds, sleeping with exponential backoff after each transient failure."""
    failures = 0
    while True:
        try:
            return attempt()
        except TransientError as error:
            failures = 1 if error.made_progress else failures + 1
            if failures > retries:
                message = f"{url}: download failed: {error} (gave up after {retries} retries)"
                raise UserError(message) from None
            time.sleep(backoff * 2 ** (failures - 1))


def _open(url: str, timeout: float, offset: int = 0) -> http.client.HTTPResponse:
    """Send a GET (from byte `offset` on); permanent HTTP errors become UserError, others TransientError."""
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as error:
        error.close()
        if error.code == 416 and offset:
            raise RangeNotSatisfiable(_content_range_total(error.headers.get("Content-Range"))) from None
        if error.code >= 500 or error.code in RETRYABLE_4XX:
            raise TransientError(f"HTTP {error.code} {error.reason}") from None
        raise UserError(f"{url}: download failed: HTTP {error.code} {error.reason}") from None
    except NETWORK_ERRORS as error:
        raise TransientError(_describe(error)) from None


def _fetch_text(url: str, timeout: float) -> str:
    with _open(url, timeout) as response:
        try:
            body = response.read()
        except NETWORK_ERRORS as error:
            raise TransientError(_describe(error)) from None
        expected = response.headers.get("Content-Length")
    if expected is not None and len(body) != int(expected):
        raise TransientError(f"connection closed after {len(body)} of {expected} bytes")
    return body.decode("utf-8", errors="replace")


def _fetch_into(url: str, part: Path, timeout: float, bar: tqdm) -> None:
    """One attempt: append the rest of `url` to `part`; raise TransientError if the transfer ends early."""
    offset = part.stat().st_size if part.exists() else 0
    try:
        response = _open(url, timeout, offset)
    except RangeNotSatisfiable as error:
        if error.remote_size == offset:
            return
        # The partial file is longer than the remote one (or the server did not say how long that is).
        part.unlink()
        raise TransientError(f"{part} does not match the remote file ({error}); restarting") from None

    with response:
        content_length = response.headers.get("Content-Length")
        length = int(content_length) if content_length is not None else None
        if response.status == 206:
            start, total = _content_range(response.headers.get("Content-Range"))
            if start != offset:
                part.unlink()
                raise TransientError(f"server resumed at byte {start} instead of {offset}; restarting")
            if total is None and length is not None:
                total = offset + length
        elif response.status == 200:
            offset = 0  # the server ignored the Range request: start over
            total = length
        else:
            raise UserError(f"{url}: unexpected HTTP {response.status} {response.reason}")

        bar.reset(total=total)
        bar.update(offset)
        received = 0
        with part.open("ab" if offset else "wb") as sink:
            while True:
                try:
                    block = response.read1(CHUNK_SIZE)
                except NETWORK_ERRORS as error:
                    raise TransientError(_describe(error), made_progress=received > 0) from None
                if not block:
                    break
                sink.write(block)
                received += len(block)
                bar.update(len(block))

    if length is not None and received != length:
        raise TransientError(
            f"connection closed after {received} of {length} bytes", made_progress=received > 0
        )


def _content_range(header: str | None) -> tuple[int | None, int | None]:
    """(first byte, total size) from a 206 `Content-Range: bytes first-last/total`; None where unknown."""
    match = _CONTENT_RANGE.fullmatch(header.strip()) if header else None
    if match is None or match.group(1) is None:
        return None, None
    total = match.group(3)
    return int(match.group(1)), int(total) if total != "*" else None


def _content_range_total(header: str | None) -> int | None:
    """The total size from a 416 `Content-Range: bytes */total`, None when absent."""
    match = _CONTENT_RANGE.fullmatch(header.strip()) if header else None
    if match is None or match.group(3) == "*":
        return None
    return int(match.group(3))


def _describe(error: BaseException) -> str:
    if isinstance(error, urllib.error.URLError) and isinstance(error.reason, BaseException):
        error = error.reason
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
