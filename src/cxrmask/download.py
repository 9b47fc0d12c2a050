"""Fault-tolerant downloads: resumable, retried, checksum-verified, atomic.

The real inputs are tens of gigabytes behind hosts that drop connections, time
out, throttle, or answer with a web page instead of the file (NIH's Box, S3,
Google Drive). So a dropped connection must cost only the missing bytes, a
wrong or silently changed file must never reach the pipeline, and a job killed
halfway must leave nothing that looks finished:

- bytes stream into ``<dest>.part``, a stable name, so a later attempt or a
  later process resumes it with an HTTP ``Range`` request;
- the SHA-256 is computed while streaming, and ``dest`` is only ever created by
  renaming a verified ``.part``;
- without a checksum in the config, the first digest seen is recorded in a
  shared JSON lock file and every later download must match it.

Only the standard library speaks HTTP, so nothing beyond the Python runtime is
needed on a cluster node.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import http.client
import json
import logging
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tqdm import tqdm

from cxrmask.atomic import write_json
from cxrmask.config import DownloadSettings
from cxrmask.errors import ChecksumError, ConfigError, DownloadError, InputError

log = logging.getLogger(__name__)

USER_AGENT = "cxrmask-download/0.1"
HTML_SUFFIXES = frozenset({".html", ".htm"})
RETRYABLE_STATUS = frozenset({408, 425, 429})
MAX_BACKOFF_S = 60.0
_SHA256_RE = re.compile(r"[0-9a-f]{64}")
_CONTENT_RANGE_RE = re.compile(r"bytes\s+(?:(\d+)-(\d+)|\*)/(\d+|\*)")


class _RetryError(Exception):
    """A transient failure: the attempt may be repeated after a pause."""


def sha256_file(path: str | os.PathLike[str], chunk_size: int = 1 << 20) -> str:
    """Return the hex SHA-256 of a file, read in chunks so any size fits in memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def part_path(dest: str | os.PathLike[str]) -> Path:
    """The stable partial-download name for ``dest``; resumable across attempts and processes."""
    dest = Path(dest)
    return dest.with_name(dest.name + ".part")


def lock_key(dest: str | os.PathLike[str], source: str | os.PathLike[str]) -> str:
    """Key of a lock-file entry: the same file name from another source is a different entry."""
    return f"{Path(dest).name}|{os.fspath(source)}"


def fetch(
    source: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    *,
    sha256: str | None = None,
    lock_file: str | os.PathLike[str] | None = None,
    settings: DownloadSettings | None = None,
    chunk_size: int = 1 << 20,
    progress: bool = True,
) -> str:
    """Download ``source`` to ``dest`` and return the file's SHA-256.

    ``source`` is an http(s) URL, a ``file://`` URL or a local path (a file the
    user already has is copied and verified the same way). The digest must
    equal ``sha256`` when given; otherwise it must equal the one recorded for
    (file name, source) in ``lock_file``, which is recorded on first download.
    ``settings`` (the config's ``download`` section; its defaults when None)
    gives the retries, the stall timeout and the backoff; ``retries`` counts
    consecutive attempts that made no progress: a transfer that keeps
    advancing through dropped connections is never given up.
    Raises DownloadError (ChecksumError for a digest mismatch).
    """
    settings = settings or DownloadSettings()
    dest = Path(dest)
    source_text = os.fspath(source)
    lock = Path(lock_file) if lock_file is not None else None
    key = lock_key(dest, source_text)
    expected, origin = _expected_digest(sha256, lock, key, dest)

    if dest.exists():
        actual = sha256_file(dest, chunk_size)
        if expected is None or actual == expected:
            log.info("%s already present and verified (sha256 %s); nothing to fetch", dest, actual)
            _record(
                lock, key, source_text, dest, actual, dest.stat().st_size, authoritative=sha256 is not None
            )
            return actual
        log.warning(
            "%s exists but its sha256 %s differs from %s (%s); fetching again", dest, actual, expected, origin
        )

    dest.parent.mkdir(parents=True, exist_ok=True)
    part = part_path(dest)
    scheme = urllib.parse.urlsplit(source_text).scheme.lower() if isinstance(source, str) else ""
    with tqdm(desc=dest.name, unit="B", unit_scale=True, unit_divisor=1024, disable=not progress) as bar:
        if scheme in ("http", "https"):
            actual = _fetch_http(
                source_text, dest, part, bar, settings.retries, settings.backoff, settings.timeout, chunk_size
            )
        elif scheme == "file":
            local = Path(urllib.request.url2pathname(urllib.parse.urlsplit(source_text).path))
            actual = _copy_local(local, part, bar, chunk_size)
        elif len(scheme) > 1:  # one letter is a Windows drive, not a scheme
            raise DownloadError(
                f"cannot download {source_text!r} for {dest.name}: unsupported URL scheme {scheme!r}. "
                "Give an http(s) or file:// URL, or the local path of the file."
            )
        else:
            actual = _copy_local(Path(source_text), part, bar, chunk_size)

    if expected is not None and actual != expected:
        part.unlink(missing_ok=True)
        raise ChecksumError(_mismatch_message(dest, source_text, expected, actual, origin, lock, key))
    size = part.stat().st_size
    try:
        _record(lock, key, source_text, dest, actual, size, authoritative=sha256 is not None)
    except ChecksumError:
        part.unlink(missing_ok=True)
        raise
    os.replace(part, dest)
    log.info("downloaded %s (%d bytes, sha256 %s)", dest, size, actual)
    return actual


def _expected_digest(sha256: str | None, lock: Path | None, key: str, dest: Path) -> tuple[str | None, str]:
    """The digest to verify against and where it came from (for the error message)."""
    if sha256 is not None:
        value = sha256.strip().lower()
        if not _SHA256_RE.fullmatch(value):
            raise ConfigError(f"sha256 for {dest.name} must be 64 hexadecimal characters, got {sha256!r}")
        return value, "given in the config"
    if lock is not None:
        entry = _read_lock(lock).get(key)
        if entry is not None:
            return entry["sha256"], f"recorded in {lock}"
    return None, "none"


def _mismatch_message(
    dest: Path, source: str, expected: str, actual: str, origin: str, lock: Path | None, key: str
) -> str:
    """Say which file, from where, both digests, and what the user can do."""
    if origin.startswith("recorded"):
        advice = (
            f"If the source legitimately changed, delete the entry {key!r} from {lock} and run again; "
            "otherwise the mirror serves a different or damaged file: check it."
        )
    else:
        advice = (
            "Check the mirror or the local file (it may be damaged or a different version); correct the "
            "checksum in the config only if the source legitimately changed."
        )
    return (
        f"checksum mismatch for {dest.name} from {source}: expected sha256 {expected} ({origin}), "
        f"got {actual}. The partial download was deleted and {dest} was not written. {advice}"
    )


def _fetch_http(
    url: str,
    dest: Path,
    part: Path,
    bar: tqdm,
    retries: int,
    backoff: float,
    timeout: float,
    chunk_size: int,
) -> str:
    """Run attempts until the ``.part`` holds the whole file; return its digest."""
    digest = _RunningDigest(part, chunk_size)
    attempts = 0
    stalled = 0
    while True:
        attempts += 1
        before = part.stat().st_size if part.exists() else 0
        try:
            _http_attempt(url, dest, part, digest, bar, timeout, chunk_size, attempts)
            return digest.hexdigest()
        except _RetryError as err:
            after = part.stat().st_size if part.exists() else 0
            stalled = 0 if after > before else stalled + 1
            if stalled > retries:
                raise DownloadError(
                    f"could not download {url} after {attempts} attempts (last error: {err}). "
                    f"Check the network and the URL and run again ({part.name} is kept and resumed), "
                    f"or download {dest.name} by hand and give its local path in the config."
                ) from None
            pause = min(backoff * 2 ** max(stalled - 1, 0), MAX_BACKOFF_S)
            log.warning("%s: attempt %d failed (%s); retrying in %.2g s", url, attempts, err, pause)
            time.sleep(pause)


def _http_attempt(
    url: str,
    dest: Path,
    part: Path,
    digest: _RunningDigest,
    bar: tqdm,
    timeout: float,
    chunk_size: int,
    attempt: int,
) -> None:
    """One request: resume from the ``.part``'s size, append, and check the length.

    Raises _RetryError for transient failures and DownloadError for final ones.
    """
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        with contextlib.closing(err):
            _handle_http_error(url, dest, part, offset, err, attempt)
        return  # only a 416 for an already complete .part gets here
    except (urllib.error.URLError, http.client.HTTPException, OSError) as err:
        raise _RetryError(f"{_reason(err)} before any data") from err

    with response:
        content_type = response.headers.get_content_type()
        if content_type == "text/html" and dest.suffix.lower() not in HTML_SUFFIXES:
            raise DownloadError(
                f"{url} returned an HTML page (Content-Type {response.headers.get('Content-Type')}) where "
                f"the file {dest.name} was expected: the host shows a web page instead of the file (a "
                "virus-scan warning, a login or a quota page). Download the file by hand in a browser and "
                "give its local path in the config."
            )
        length = _int_or_none(response.headers.get("Content-Length"))
        if response.status == 206:
            start, total = _parse_content_range(response.headers.get("Content-Range"))
            if start != offset:
                part.unlink(missing_ok=True)
                raise _RetryError(
                    f"server answered range start {start} to a request from {offset}; restarting"
                )
            if total is None and length is not None:
                total = offset + length
        else:
            if offset:
                log.info("%s ignored the Range request (HTTP %d); restarting from zero", url, response.status)
                offset = 0
            total = length
        bar.reset(total=total)
        bar.update(offset)
        _stream(response, part, digest, offset, bar, chunk_size)

    size = part.stat().st_size
    if total is not None and size > total:  # never progress: a .part cannot outgrow the file
        part.unlink()
        raise _RetryError(f"{size} bytes received for a {total}-byte file; restarting from zero")
    if total is not None and size != total:
        raise _RetryError(f"incomplete transfer: {size} of {total} bytes")


def _handle_http_error(
    url: str, dest: Path, part: Path, offset: int, err: urllib.error.HTTPError, attempt: int
) -> None:
    """Classify an error status: complete (416 on a full .part), transient, or final."""
    if err.code == 416 and offset:
        _, total = _parse_content_range(err.headers.get("Content-Range"))
        if total == offset:
            log.info("%s: %s is already complete (%d bytes)", url, part.name, offset)
            return
        part.unlink(missing_ok=True)
        raise _RetryError(f"HTTP 416 for a {offset}-byte partial file of a {total}-byte file; restarting")
    if err.code >= 500 or err.code in RETRYABLE_STATUS:
        raise _RetryError(f"HTTP {err.code} {err.reason}")
    raise DownloadError(
        f"{url} answered HTTP {err.code} {err.reason} (attempt {attempt}; not retried: the server refuses "
        f"the request, so the URL is wrong, the file moved or a login is needed). Fix the URL in the config, "
        f"or download {dest.name} by hand and give its local path in the config."
    )


def _stream(
    response: http.client.HTTPResponse,
    part: Path,
    digest: _RunningDigest,
    offset: int,
    bar: tqdm,
    chunk_size: int,
) -> None:
    """Append the body to the ``.part`` (or rewrite it from zero), hashing on the way."""
    hasher = digest.resume() if offset else digest.restart()
    buffer = memoryview(bytearray(chunk_size))
    with open(part, "ab" if offset else "wb") as handle:
        while True:
            try:
                count = response.readinto(buffer)
            except (http.client.HTTPException, OSError) as err:
                raise _RetryError(f"{_reason(err)} after {handle.tell()} bytes") from err
            if not count:
                return
            chunk = buffer[:count]
            handle.write(chunk)  # a disk error here is not retried: it will not fix itself
            hasher.update(chunk)
            digest.length += count
            bar.update(count)


class _RunningDigest:
    """SHA-256 of exactly the bytes in the ``.part``, carried across attempts.

    Resuming must not re-read gigabytes already hashed, yet the digest must
    always describe the file on disk (another process may have written it), so
    it is rebuilt from disk whenever the recorded length disagrees.
    """

    def __init__(self, part: Path, chunk_size: int) -> None:
        self.part = part
        self.chunk_size = chunk_size
        self.hasher: Any = None
        self.length = -1

    def restart(self) -> Any:
        """A fresh digest for a ``.part`` about to be rewritten from zero."""
        self.hasher, self.length = hashlib.sha256(), 0
        return self.hasher

    def resume(self) -> Any:
        """The digest of the current ``.part`` content, ready to be extended."""
        size = self.part.stat().st_size if self.part.exists() else 0
        if self.hasher is None or self.length != size:
            self.hasher, self.length = hashlib.sha256(), 0
            with open(self.part, "rb") as handle:
                while chunk := handle.read(self.chunk_size):
                    self.hasher.update(chunk)
                    self.length += len(chunk)
        return self.hasher

    def hexdigest(self) -> str:
        """Digest of the finished ``.part``."""
        return self.resume().hexdigest()


def _copy_local(path: Path, part: Path, bar: tqdm, chunk_size: int) -> str:
    """Copy a local file into the ``.part``, hashing on the way (local copies need no resume)."""
    if not path.is_file():
        raise DownloadError(
            f"local source {path} does not exist or is not a file: give the path of the downloaded file "
            "(or its URL) in the config."
        )
    bar.reset(total=path.stat().st_size)
    hasher = hashlib.sha256()
    buffer = memoryview(bytearray(chunk_size))
    with open(path, "rb") as src, open(part, "wb") as dst:
        while count := src.readinto(buffer):
            chunk = buffer[:count]
            dst.write(chunk)
            hasher.update(chunk)
            bar.update(count)
    return hasher.hexdigest()


def _parse_content_range(value: str | None) -> tuple[int | None, int | None]:
    """``bytes 10-99/100`` -> (10, 100); ``bytes */100`` -> (None, 100); unknown parts are None."""
    match = _CONTENT_RANGE_RE.fullmatch((value or "").strip())
    if not match:
        return None, None
    start = int(match.group(1)) if match.group(1) is not None else None
    total = int(match.group(3)) if match.group(3) != "*" else None
    return start, total


def _int_or_none(value: str | None) -> int | None:
    """A header integer, or None when absent or malformed."""
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _reason(err: BaseException) -> str:
    """A short cause for logs and messages (URLError hides the real one in ``reason``)."""
    cause = err.reason if isinstance(err, urllib.error.URLError) else err
    return f"{type(cause).__name__}: {cause}" if str(cause) else type(cause).__name__


def _read_lock(lock: Path) -> dict[str, dict[str, Any]]:
    """The lock file's entries ({} when absent). Writers replace it atomically, so no lock is needed."""
    try:
        data = json.loads(lock.read_text())
    except FileNotFoundError:
        return {}
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(
            f"download lock file {lock} is not valid JSON ({err}): repair it or delete it"
        ) from err
    if not isinstance(data, dict):
        raise InputError(f"download lock file {lock} must hold a JSON object: repair it or delete it")
    return data


@contextlib.contextmanager
def _locked(lock: Path) -> Iterator[None]:
    """Hold an exclusive fcntl lock on a sidecar of the lock file.

    The JSON itself is replaced by rename on every update, so a lock on its
    inode would not exclude the next writer; the sidecar is never replaced.
    """
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock.with_name(lock.name + ".flock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _record(
    lock: Path | None, key: str, source: str, dest: Path, digest: str, size: int, *, authoritative: bool
) -> None:
    """Record (or re-check) the digest for ``key`` under the lock; parallel jobs share the file.

    A digest from the config is authoritative and overwrites the entry; a
    first-seen digest must agree with one another job recorded meanwhile.
    """
    if lock is None:
        return
    entry = {"file": dest.name, "sha256": digest, "size": size, "source": source}
    with _locked(lock):
        entries = _read_lock(lock)
        old = entries.get(key)
        if old == entry:
            return
        if old is not None and old.get("sha256") != digest and not authoritative:
            raise ChecksumError(
                _mismatch_message(dest, source, old["sha256"], digest, f"recorded in {lock}", lock, key)
            )
        entries[key] = entry
        write_json(lock, entries)
