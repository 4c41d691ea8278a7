"""`genemask download`: fetch a genome over HTTP(S), resuming, retrying and verifying its md5."""

from __future__ import annotations

import argparse
from pathlib import Path

from genemask.genome.download import download
from genemask.options import Range, add_option


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "download",
        help="download a genome over HTTP(S) with resume, retries and md5 verification",
        description=(
            "Stream URL to OUT through OUT.part, resuming with HTTP Range requests after dropped connections "
            "and retrying transient failures with exponential backoff. OUT.part.json records the URL and the "
            "server's length, ETag and Last-Modified, so a part is only ever resumed from the same remote file. "
            "OUT appears only once the file is complete and its md5 (if given or listed) matches; a mismatch "
            "removes the partial file."
        ),
    )
    parser.add_argument("--url", required=True, help="http(s) URL of the file to download")
    parser.add_argument("--out", required=True, type=Path, help="where to write the downloaded file")
    checksum = parser.add_mutually_exclusive_group()
    checksum.add_argument(
        "--checksum-url",
        help="URL of an md5 listing (UCSC md5sum.txt, NCBI md5checksums.txt) with an entry for the file",
    )
    checksum.add_argument("--md5", help="expected md5 of the file, 32 hex digits")
    add_option(
        parser,
        "--retries",
        default=5,
        range=Range(minimum=0, maximum=100),
        help="consecutive failed attempts to retry, with exponential backoff",
    )
    add_option(
        parser,
        "--timeout",
        default=60.0,
        range=Range(exclusive_minimum=0, maximum=3600),
        help="seconds to wait on any socket operation before retrying",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    download(
        args.url,
        args.out,
        checksum_url=args.checksum_url,
        md5=args.md5,
        retries=args.retries,
        timeout=args.timeout,
    )
    return 0
