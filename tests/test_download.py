"""fetch() against a real HTTP server on loopback that drops, stalls, fails and lies.

Served files are in the real sources' formats where the format matters: an
NIH-style ``images_001.tar.gz`` of 8-bit grey PNGs under ``images/``.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from httpserver import LoopbackServer
from test_archive import nih_tarball

from cxrmask.archive import extract
from cxrmask.config import DownloadSettings
from cxrmask.download import fetch, lock_key, part_path, sha256_file
from cxrmask.errors import ChecksumError, ConfigError, DownloadError
from cxrmask.imageio import read_grey

FAST = {"settings": DownloadSettings(backoff=0.001), "progress": False}


def fast(**settings) -> dict:
    """fetch()'s options with a near-zero backoff and ``settings`` over it."""
    return {"settings": DownloadSettings(**{"backoff": 0.001, **settings}), "progress": False}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LoopbackServer]:
    with LoopbackServer(tmp_path / "served") as running:
        yield running


def test_cut_transfer_resumes_with_range_and_is_byte_identical(
    server: LoopbackServer, tmp_path: Path
) -> None:
    payload, images = nih_tarball(tmp_path / "png", count=12)
    server.add("images_001.tar.gz", payload)
    half = len(payload) // 2
    server.behave("images_001.tar.gz", drop_after=half)
    dest = tmp_path / "raw" / "images_001.tar.gz"

    digest = fetch(server.url("images_001.tar.gz"), dest, **FAST)

    assert dest.read_bytes() == payload
    assert digest == hashlib.sha256(payload).hexdigest() == sha256_file(dest)
    assert not part_path(dest).exists()
    log = server.log("images_001.tar.gz")
    assert [(entry["range"], entry["status"]) for entry in log] == [(None, 200), (f"bytes={half}-", 206)]
    # the resumed archive is a real, complete NIH-style tarball
    files = extract(dest, tmp_path / "nih", progress=False)
    assert [path.relative_to(tmp_path / "nih").as_posix() for path in files] == [
        f"images/{name}" for name in sorted(images)
    ]
    for name, pixels in images.items():
        np.testing.assert_array_equal(read_grey(tmp_path / "nih" / "images" / name), pixels)


def test_part_left_by_an_earlier_process_is_resumed(server: LoopbackServer, tmp_path: Path) -> None:
    payload = os.urandom(300_000)
    server.add("medsam_vit_b.pth", payload)
    dest = tmp_path / "medsam_vit_b.pth"
    part_path(dest).write_bytes(payload[:123_456])

    fetch(server.url("medsam_vit_b.pth"), dest, sha256=hashlib.sha256(payload).hexdigest(), **FAST)

    assert dest.read_bytes() == payload
    assert [entry["range"] for entry in server.log("medsam_vit_b.pth")] == ["bytes=123456-"]


def test_complete_part_answered_416_is_verified_and_renamed(server: LoopbackServer, tmp_path: Path) -> None:
    payload = os.urandom(50_000)
    server.add("f.bin", payload)
    dest = tmp_path / "f.bin"
    part_path(dest).write_bytes(payload)

    fetch(server.url("f.bin"), dest, sha256=hashlib.sha256(payload).hexdigest(), **FAST)

    assert dest.read_bytes() == payload
    assert [entry["status"] for entry in server.log("f.bin")] == [416]


def test_server_ignoring_range_restarts_from_zero(server: LoopbackServer, tmp_path: Path) -> None:
    payload = os.urandom(400_000)
    server.add("f.bin", payload)
    server.behave("f.bin", drop_after=150_000, ignore_range=True)
    dest = tmp_path / "f.bin"

    fetch(server.url("f.bin"), dest, **FAST)

    assert dest.read_bytes() == payload
    log = server.log("f.bin")
    assert [(entry["range"], entry["status"]) for entry in log] == [(None, 200), ("bytes=150000-", 200)]


def test_wrong_checksum_fails_clearly_and_leaves_nothing(server: LoopbackServer, tmp_path: Path) -> None:
    payload = os.urandom(10_000)
    server.add("images_002.tar.gz", payload)
    dest = tmp_path / "images_002.tar.gz"
    wrong = "0" * 64

    with pytest.raises(ChecksumError) as caught:
        fetch(server.url("images_002.tar.gz"), dest, sha256=wrong, **FAST)

    message = str(caught.value)
    for needed in (
        "images_002.tar.gz",
        server.url("images_002.tar.gz"),
        wrong,
        hashlib.sha256(payload).hexdigest(),
    ):
        assert needed in message
    assert "mirror" in message
    assert not dest.exists()
    assert not part_path(dest).exists()


def test_malformed_checksum_is_a_config_error(server: LoopbackServer, tmp_path: Path) -> None:
    server.add("f.bin", b"x")
    with pytest.raises(ConfigError, match="64 hexadecimal"):
        fetch(server.url("f.bin"), tmp_path / "f.bin", sha256="abc", **FAST)
    assert server.log("f.bin") == []


def test_lock_file_records_first_digest_and_catches_a_changed_file(
    server: LoopbackServer, tmp_path: Path
) -> None:
    original = os.urandom(20_000)
    server.add("Data_Entry_2017_v2020.csv", original)
    url = server.url("Data_Entry_2017_v2020.csv")
    lock = tmp_path / "results" / "downloads.lock.json"
    dest = tmp_path / "raw" / "Data_Entry_2017_v2020.csv"

    first = fetch(url, dest, lock_file=lock, **FAST)

    entry = json.loads(lock.read_text())[lock_key(dest, url)]
    assert entry == {"file": dest.name, "sha256": first, "size": len(original), "source": url}
    # present and verified: nothing is fetched again
    assert fetch(url, dest, lock_file=lock, **FAST) == first
    assert len(server.log("Data_Entry_2017_v2020.csv")) == 1

    server.add("Data_Entry_2017_v2020.csv", original[:-1] + b"!")  # the source changed silently
    dest.unlink()
    with pytest.raises(ChecksumError) as caught:
        fetch(url, dest, lock_file=lock, **FAST)
    message = str(caught.value)
    assert str(lock) in message and first in message and "delete the entry" in message
    assert not dest.exists() and not part_path(dest).exists()
    assert json.loads(lock.read_text())[lock_key(dest, url)]["sha256"] == first


def _fetch_into_shared_lock(args: tuple[str, str, str]) -> str:
    source, dest, lock = args
    return fetch(source, dest, lock_file=lock, progress=False)


def test_parallel_jobs_share_the_lock_file_without_losing_entries(tmp_path: Path) -> None:
    sources = []
    for index in range(12):
        path = tmp_path / "src" / f"images_{index + 1:03d}.tar.gz"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(os.urandom(5_000))
        sources.append(path)
    lock = tmp_path / "downloads.lock.json"
    jobs = [(str(path), str(tmp_path / "raw" / path.name), str(lock)) for path in sources]

    with multiprocessing.get_context("fork").Pool(6) as pool:
        digests = pool.map(_fetch_into_shared_lock, jobs)

    entries = json.loads(lock.read_text())
    assert {key: entry["sha256"] for key, entry in entries.items()} == {
        lock_key(dest, source): digest for (source, dest, _), digest in zip(jobs, digests, strict=True)
    }


def test_404_is_final_at_once(server: LoopbackServer, tmp_path: Path) -> None:
    server.behave("images_013.tar.gz", status=404)
    with pytest.raises(DownloadError) as caught:
        fetch(server.url("images_013.tar.gz"), tmp_path / "images_013.tar.gz", **fast(retries=4))
    message = str(caught.value)
    assert "404" in message and server.url("images_013.tar.gz") in message and "local path" in message
    assert len(server.log("images_013.tar.gz")) == 1
    assert not (tmp_path / "images_013.tar.gz").exists()


def test_stalled_server_times_out_after_the_configured_retries(
    server: LoopbackServer, tmp_path: Path
) -> None:
    server.add("f.bin", b"never sent")
    server.behave("f.bin", stall=30.0)
    with pytest.raises(DownloadError) as caught:
        fetch(server.url("f.bin"), tmp_path / "f.bin", **fast(retries=2, timeout=0.2))
    message = str(caught.value)
    assert "after 3 attempts" in message and server.url("f.bin") in message
    assert "timed out" in message.lower()
    assert len(server.log("f.bin")) == 0  # it never answered
    assert not (tmp_path / "f.bin").exists()


def test_500s_then_ok_succeeds(server: LoopbackServer, tmp_path: Path) -> None:
    payload = os.urandom(30_000)
    server.add("f.bin", payload)
    server.behave("f.bin", fail_times=2)
    assert (
        fetch(server.url("f.bin"), tmp_path / "f.bin", **fast(retries=2))
        == hashlib.sha256(payload).hexdigest()
    )
    assert [entry["status"] for entry in server.log("f.bin")] == [500, 500, 200]


def test_500s_beyond_the_retries_fail_with_the_last_cause(server: LoopbackServer, tmp_path: Path) -> None:
    server.add("f.bin", b"data")
    server.behave("f.bin", fail_times=5)
    with pytest.raises(DownloadError, match=r"after 2 attempts \(last error: HTTP 500"):
        fetch(server.url("f.bin"), tmp_path / "f.bin", **fast(retries=1))


@pytest.fixture
def pauses(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Every pause the test's own thread sleeps, in order (the pauses still happen)."""
    recorded: list[float] = []
    real_sleep = time.sleep

    def sleep(seconds: float) -> None:
        if threading.current_thread() is threading.main_thread():
            recorded.append(seconds)
        real_sleep(seconds)

    monkeypatch.setattr(time, "sleep", sleep)
    return recorded


def test_backoff_doubles_with_each_failure_in_a_row(
    server: LoopbackServer, tmp_path: Path, pauses: list[float]
) -> None:
    payload = os.urandom(10_000)
    server.add("f.bin", payload)
    server.behave("f.bin", fail_times=4)
    fetch(
        server.url("f.bin"),
        tmp_path / "f.bin",
        settings=DownloadSettings(retries=4, backoff=0.01),
        progress=False,
    )
    assert pauses == pytest.approx([0.01, 0.02, 0.04, 0.08])
    assert (tmp_path / "f.bin").read_bytes() == payload


def test_cuts_that_make_progress_are_not_counted_as_retries(
    server: LoopbackServer, tmp_path: Path, pauses: list[float]
) -> None:
    """Six cut transfers, each a little further on: one retry allowed, yet the file arrives whole."""
    payload = os.urandom(70_000)
    server.add("f.bin", payload)
    server.behave("f.bin", drop_after=10_000, drops=6)
    fetch(
        server.url("f.bin"),
        tmp_path / "f.bin",
        settings=DownloadSettings(retries=1, backoff=0.01),
        progress=False,
    )
    assert (tmp_path / "f.bin").read_bytes() == payload
    ranges = [entry["range"] for entry in server.log("f.bin")]
    assert ranges == [None, *(f"bytes={10_000 * i}-" for i in range(1, 7))]
    assert pauses == pytest.approx([0.01] * 6)  # progress resets the backoff too


def test_html_interstitial_is_refused(server: LoopbackServer, tmp_path: Path) -> None:
    server.behave("medsam_vit_b.pth", html=True)
    dest = tmp_path / "medsam_vit_b.pth"
    with pytest.raises(DownloadError) as caught:
        fetch(server.url("medsam_vit_b.pth"), dest, **FAST)
    message = str(caught.value)
    assert "HTML" in message and "by hand" in message and "local path" in message
    assert not dest.exists()
    assert len(server.log("medsam_vit_b.pth")) == 1


def test_local_path_and_file_url_are_copied_and_verified(tmp_path: Path) -> None:
    payload = os.urandom(70_000)
    source = tmp_path / "downloads" / "medsam_vit_b.pth"
    source.parent.mkdir()
    source.write_bytes(payload)
    digest = hashlib.sha256(payload).hexdigest()

    assert fetch(str(source), tmp_path / "a" / "medsam_vit_b.pth", sha256=digest, **FAST) == digest
    assert fetch(source.as_uri(), tmp_path / "b" / "medsam_vit_b.pth", sha256=digest, **FAST) == digest
    assert (tmp_path / "a" / "medsam_vit_b.pth").read_bytes() == payload
    assert (tmp_path / "b" / "medsam_vit_b.pth").read_bytes() == payload
    with pytest.raises(ChecksumError):
        fetch(str(source), tmp_path / "c" / "medsam_vit_b.pth", sha256="f" * 64, **FAST)
    assert not (tmp_path / "c" / "medsam_vit_b.pth").exists()
    with pytest.raises(DownloadError, match="does not exist"):
        fetch(str(tmp_path / "missing.pth"), tmp_path / "d" / "medsam_vit_b.pth", **FAST)


def test_existing_dest_that_verifies_is_not_fetched(server: LoopbackServer, tmp_path: Path) -> None:
    payload = os.urandom(1000)
    dest = tmp_path / "f.bin"
    dest.write_bytes(payload)
    assert fetch(server.url("f.bin"), dest, sha256=hashlib.sha256(payload).hexdigest(), **FAST)
    assert server.log("f.bin") == []


def test_existing_dest_that_does_not_verify_is_replaced(server: LoopbackServer, tmp_path: Path) -> None:
    payload = os.urandom(1000)
    server.add("f.bin", payload)
    dest = tmp_path / "f.bin"
    dest.write_bytes(b"stale")
    fetch(server.url("f.bin"), dest, sha256=hashlib.sha256(payload).hexdigest(), **FAST)
    assert dest.read_bytes() == payload
