"""Download a genome over HTTP(S): streamed, resumed after interruptions, md5-verified, renamed atomically.

The bytes go to `<out>.part`; a dropped connection, a timeout or a 5xx answer is retried with exponential
backoff, resuming the partial file with an HTTP `Range` request. `<out>.part.json` records what the partial file
is a part of (the URL and the server's length, ETag and Last-Modified), so a part is resumed only from the same
URL and the same remote file (`If-Range`, and the length and validators checked again); any other part is
discarded, never spliced. A body shorter than its announced length is resumed; a body of unannounced length is
confirmed complete by asking for the bytes after it (answered 416 at the end), or is an error when the server
cannot say and no checksum is given. Only a complete, verified file is renamed onto `out`; a checksum mismatch
removes the partial file too, so that the next run starts clean.
"""

from __future__ import annotations

import hashlib
import http.client
import json
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
    for path in (part, source_path(out)):
        if path.is_dir():
            raise UserError(f"{path}: is a directory; remove it (the partial download of {out} goes there)")
    fetch = _Fetch(url, part, source_path(out), timeout, verify_end=expected_md5 is None)
    with tqdm(
        desc=out.name, unit="B", unit_scale=True, unit_divisor=1024, disable=None if progress else True
    ) as bar:
        fetch.bar = bar
        _retrying(fetch.until_complete, url, retries, backoff)

    if expected_md5 is not None:
        actual_md5 = file_md5(part)
        if actual_md5 != expected_md5:
            fetch.discard()
            raise UserError(
                f"{out}: md5 mismatch for {url}: expected {expected_md5}, got {actual_md5} "
                "(partial download removed; rerun to download again)"
            )
    os.replace(part, out)
    source_path(out).unlink(missing_ok=True)
    return out


def partial_path(out: Path) -> Path:
    """Where the bytes of `out` accumulate until the download is complete and verified."""
    return out.with_name(out.name + ".part")


def source_path(out: Path) -> Path:
    """What the partial file is a part of: the URL and the server's length, ETag and Last-Modified (JSON)."""
    return out.with_name(out.name + ".part.json")


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


def _open(url: str, timeout: float, offset: int = 0, if_range: str | None = None) -> http.client.HTTPResponse:
    """Send a GET (from byte `offset` on, only if the remote file still matches `if_range`); permanent HTTP
    errors become UserError, others TransientError."""
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
        if if_range:
            headers["If-Range"] = if_range
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


class _Fetch:
    """The transfer of `url` into `part`, attempt by attempt, with `source` saying what `part` belongs to."""

    def __init__(self, url: str, part: Path, source: Path, timeout: float, verify_end: bool) -> None:
        self.url, self.part, self.source, self.timeout = url, part, source, timeout
        self.verify_end = verify_end  # no checksum will vouch for a body of unannounced length
        self.bar: tqdm | None = None
        self.confirming = False  # the last body had no announced length: ask whether more follows

    def discard(self) -> None:
        self.part.unlink(missing_ok=True)
        self.source.unlink(missing_ok=True)

    def recorded(self) -> dict | None:
        """The record of what `part` belongs to, None when absent, unreadable or of another URL."""
        try:
            record = json.loads(self.source.read_text())
        except (OSError, ValueError):
            return None
        return record if isinstance(record, dict) and record.get("url") == self.url else None

    def until_complete(self) -> None:
        while not self.attempt():
            pass

    def attempt(self) -> bool:
        """One request: True when `part` is complete; False when the end must be confirmed by another request;
        TransientError when the transfer ended early."""
        record = self.recorded()
        offset = self.part.stat().st_size if self.part.exists() else 0
        if offset and record is None:
            self.discard()  # a part of another URL, or of unknown origin: never spliced into this file
            offset = 0
        if_range = None
        if record is not None:
            strong_etag = record.get("etag") and not str(record["etag"]).startswith("W/")
            if_range = record["etag"] if strong_etag else record.get("last_modified")
        confirming, self.confirming = self.confirming, False
        try:
            response = _open(self.url, self.timeout, offset, if_range)
        except RangeNotSatisfiable as error:
            known = record.get("length") if record else None
            if confirming and error.remote_size in (None, offset):
                return True  # nothing after the bytes we have: the body was complete
            if error.remote_size == offset and known in (None, offset):
                return True
            self.discard()  # longer than the remote file, or the server did not say how long that is
            raise TransientError(
                f"{self.part} does not match the remote file ({error}); restarting"
            ) from None

        with response:
            return self._receive(response, offset, record, confirming)

    def _receive(
        self, response: http.client.HTTPResponse, offset: int, record: dict | None, confirming: bool
    ) -> bool:
        headers, record = response.headers, record or {}
        content_length = headers.get("Content-Length")
        length = int(content_length) if content_length is not None else None
        etag, last_modified = headers.get("ETag"), headers.get("Last-Modified")
        if response.status == 206:
            start, total = _content_range(headers.get("Content-Range"))
            if start != offset:
                self.discard()
                raise TransientError(f"server resumed at byte {start} instead of {offset}; restarting")
            if total is None and length is not None:
                total = offset + length
            changed = [
                name
                for name, now, then in (
                    ("length", total, record.get("length")),
                    ("ETag", etag, record.get("etag")),
                    ("Last-Modified", last_modified, record.get("last_modified")),
                )
                if now is not None and then is not None and now != then
            ]
            if changed:
                self.discard()
                raise TransientError(f"the remote file changed ({', '.join(changed)}); restarting")
        elif response.status == 200:
            if confirming and self.verify_end:
                self.discard()
                raise UserError(
                    f"{self.url}: the server announced no length and ignores range requests, so a transfer "
                    "cut short cannot be told from a complete one; give --md5 or --checksum-url"
                )
            offset, total = 0, length  # a new download, or the server ignored the Range request: start over
            self.source.write_text(
                json.dumps({"url": self.url, "length": total, "etag": etag, "last_modified": last_modified})
                + "\n"
            )
        else:
            raise UserError(f"{self.url}: unexpected HTTP {response.status} {response.reason}")

        if self.bar is not None:
            self.bar.reset(total=total)
            self.bar.update(offset)
        received = 0
        with self.part.open("ab" if offset else "wb") as sink:
            while True:
                try:
                    block = response.read1(CHUNK_SIZE)
                except NETWORK_ERRORS as error:
                    raise TransientError(_describe(error), made_progress=received > 0) from None
                if not block:
                    break
                sink.write(block)
                received += len(block)
                if self.bar is not None:
                    self.bar.update(len(block))

        if total is not None and offset + received != total:
            raise TransientError(
                f"connection closed after {offset + received} of {total} bytes", made_progress=received > 0
            )
        if total is None and self.verify_end:
            self.confirming = True  # no length announced: complete only if nothing follows
            return False
        return True


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
