"""Throughput of ``fetch`` versus a plain single-stream copy, over loopback.

``fetch`` does more than copy (Range bookkeeping, a SHA-256 of every byte, an
atomic rename), so this measures what that costs: both download the same file
from the same loopback server in the same run, alternating so that load from
elsewhere on the machine hits both alike. The median and the best of
``--repeat`` runs are reported for each, and the ratio of the medians.

Run: ``python benchmarks/bench_download.py [--size-mb N] [--repeat K] [--chunk-kib C]``
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from httpserver import LoopbackServer

from cxrmask.download import fetch


def plain_copy(url: str, dest: Path) -> None:
    """The baseline: one GET, ``shutil.copyfileobj`` into a file, no hashing."""
    with urllib.request.urlopen(url) as response, open(dest, "wb") as handle:
        shutil.copyfileobj(response, handle)


def timed(action: object, dest: Path) -> float:
    """Seconds one download takes; the output is removed afterwards."""
    start = time.perf_counter()
    action(dest)  # type: ignore[operator]
    seconds = time.perf_counter() - start
    dest.unlink()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mb", type=int, default=200, help="size of the served file in MB (10^6 bytes)")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each method")
    parser.add_argument("--chunk-kib", type=int, default=1024, help="fetch's read size in KiB")
    args = parser.parse_args()

    size = args.size_mb * 1_000_000
    with (
        tempfile.TemporaryDirectory(prefix="bench_download_") as tmp,
        LoopbackServer(Path(tmp) / "srv") as server,
    ):
        block = os.urandom(1 << 20)
        with open(server.root / "payload.bin", "wb") as handle:
            for start in range(0, size, len(block)):
                handle.write(block[: size - start])
        url = server.url("payload.bin")
        dest = Path(tmp) / "out" / "payload.bin"
        dest.parent.mkdir()
        chunk = args.chunk_kib * 1024

        def run_fetch(target: Path) -> None:
            fetch(url, target, progress=False, chunk_size=chunk)

        def run_plain(target: Path) -> None:
            plain_copy(url, target)

        timed(run_plain, dest)  # warm the page cache and the server once
        plain, fetched = [], []
        for _ in range(args.repeat):
            plain.append(timed(run_plain, dest))
            fetched.append(timed(run_fetch, dest))

    mb = size / 1e6
    print(f"file: {mb:.0f} MB over loopback, {args.repeat} runs each, fetch chunk {args.chunk_kib} KiB")
    for label, seconds in (("plain copyfileobj(urlopen)", plain), ("fetch (resume + sha256)", fetched)):
        runs = ", ".join(f"{mb / s:.0f}" for s in seconds)
        print(
            f"{label:27s} median {mb / statistics.median(seconds):7.1f} MB/s"
            f"  best {mb / min(seconds):7.1f} MB/s  (runs: {runs})"
        )
    print(f"ratio fetch/plain (medians): {statistics.median(plain) / statistics.median(fetched):.2f}")


if __name__ == "__main__":
    main()
