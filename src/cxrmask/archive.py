"""Safe, all-or-nothing extraction of downloaded .tar.gz/.tgz/.tar and .zip archives.

Archives come from the internet, so a member named ``../../.bashrc``, an
absolute path, a link pointing out of the target or a device node must never
be written, and a truncated download must never pass for a complete dataset.
Every member is checked by name before it is written (and tarfile's ``data``
filter checks again); the archive is extracted into a temporary sibling folder
that replaces ``target`` only once everything is out, so a refused, corrupt or
interrupted extraction leaves nothing behind, and an older complete ``target``
stays as it was.

A .tar.gz is read in a single streaming pass (the NIH archives are ~4 GB each:
a second pass to list members first would double the time) and decompressed
through ``gzip.GzipFile`` drained to its end, which checks the gzip CRC and
length, so even a file cut just before its trailer is caught.
"""

from __future__ import annotations

import gzip
import logging
import os
import posixpath
import re
import shutil
import stat
import tarfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from tqdm import tqdm

from cxrmask.atomic import atomic_dir
from cxrmask.errors import InputError

log = logging.getLogger(__name__)

TAR_SUFFIXES = (".tar.gz", ".tgz", ".tar")
ZIP_SUFFIXES = (".zip",)
_DRIVE_RE = re.compile(r"^[A-Za-z]:")
_CORRUPT = (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, gzip.BadGzipFile)


def extract(
    archive: str | os.PathLike[str], target: str | os.PathLike[str], *, progress: bool = True
) -> list[Path]:
    """Extract ``archive`` into the folder ``target``; return the extracted files' final paths, sorted.

    The format follows the name: .tar.gz, .tgz, .tar or .zip. Raises
    InputError naming the archive (and the member) for an unsafe member, a
    truncated or corrupt archive, or an unknown format; nothing is left behind.
    """
    archive, target = Path(archive), Path(target)
    name = archive.name.lower()
    if not archive.is_file():
        raise InputError(f"archive {archive} does not exist: download it first")
    if name.endswith(TAR_SUFFIXES):
        extractor = _extract_tar
    elif name.endswith(ZIP_SUFFIXES):
        extractor = _extract_zip
    else:
        raise InputError(
            f"cannot extract {archive}: unknown archive format (expected one of "
            f"{', '.join(TAR_SUFFIXES + ZIP_SUFFIXES)})"
        )
    try:
        with atomic_dir(target) as tmp:
            relative = extractor(archive, tmp, progress)
    except _CORRUPT as err:
        raise InputError(
            f"{archive} is truncated or corrupt ({type(err).__name__}: {err}): "
            "delete it and download it again"
        ) from err
    log.info("extracted %d files from %s into %s", len(relative), archive, target)
    return sorted(target.joinpath(*path.parts) for path in relative)


def unsafe_name_reason(name: str) -> str | None:
    """Why a member name would write outside the target folder, or None when it is safe.

    Backslashes count as separators: an archive made on Windows may use them,
    and ``..\\x`` must not slip through on a system where they are plain characters.
    """
    unified = name.replace("\\", "/")
    if unified.startswith("/"):
        return "is an absolute path"
    if _DRIVE_RE.match(unified):
        return "starts with a drive letter"
    if ".." in PurePosixPath(unified).parts:
        return "contains a '..' component"
    return None


def _refuse(archive: Path, member: str, reason: str) -> InputError:
    """The error for an unsafe member: the whole archive is refused."""
    return InputError(
        f"refusing to extract {archive}: member {member!r} {reason}, which could write outside the target "
        "folder. A genuine dataset archive has no such member, so this file is damaged or not the expected "
        "one; nothing was extracted. Delete it and download it again from the official source."
    )


def _check_tar_member(archive: Path, member: tarfile.TarInfo) -> None:
    """Refuse names, links and special files that could escape the target (before writing anything)."""
    reason = unsafe_name_reason(member.name)
    if reason is None and (member.ischr() or member.isblk() or member.isfifo()):
        reason = "is a device file or FIFO"
    if reason is None and (member.issym() or member.islnk()):
        link = member.linkname.replace("\\", "/")
        base = posixpath.dirname(member.name) if member.issym() else ""
        resolved = posixpath.normpath(posixpath.join(base, link))
        if link.startswith("/") or _DRIVE_RE.match(link):
            reason = f"is a link to the absolute path {member.linkname!r}"
        elif resolved == ".." or resolved.startswith("../"):
            reason = f"is a link to {member.linkname!r}, outside the archive"
    if reason is not None:
        raise _refuse(archive, member.name, reason)


def _extract_tar(archive: Path, folder: Path, progress: bool) -> list[PurePosixPath]:
    """Stream a (gzipped) tar into ``folder``, member by member; return the regular files written."""
    files: list[PurePosixPath] = []
    with open(archive, "rb") as raw:
        gzipped = raw.read(2) == b"\x1f\x8b"
        raw.seek(0)
        stream: BinaryIO = gzip.GzipFile(fileobj=raw, mode="rb") if gzipped else raw
        with (
            tarfile.open(fileobj=stream, mode="r|") as tar,
            tqdm(desc=f"extract {archive.name}", unit="file", disable=not progress) as bar,
        ):
            for member in tar:
                _check_tar_member(archive, member)
                try:
                    tar.extract(member, folder, filter="data")
                except tarfile.FilterError as err:
                    raise _refuse(archive, member.name, f"was refused by the safety filter ({err})") from err
                if member.isfile():
                    files.append(PurePosixPath(posixpath.normpath(member.name)))
                bar.update()
        while stream.read(1 << 20):  # reach the end of the gzip stream: checks its CRC and length
            pass
    return files


def _extract_zip(archive: Path, folder: Path, progress: bool) -> list[PurePosixPath]:
    """Check every name first (the zip directory lists them all), then write; return the files written."""
    files: list[PurePosixPath] = []
    with zipfile.ZipFile(archive) as bundle:
        members = bundle.infolist()
        for info in members:
            reason = unsafe_name_reason(info.filename)
            if reason is None and stat.S_ISLNK(info.external_attr >> 16):
                reason = "is a symbolic link"
            if reason is None and info.flag_bits & 0x1:
                reason = "is encrypted"
            if reason is not None:
                raise _refuse(archive, info.filename, reason)
        for info in tqdm(members, desc=f"extract {archive.name}", unit="file", disable=not progress):
            relative = PurePosixPath(posixpath.normpath(info.filename.replace("\\", "/")))
            destination = folder.joinpath(*relative.parts)
            if info.is_dir():
                destination.mkdir(parents=True, exist_ok=True)
                continue
            destination.parent.mkdir(parents=True, exist_ok=True)
            with bundle.open(info) as source, open(destination, "wb") as sink:
                shutil.copyfileobj(source, sink, 1 << 20)  # a bad CRC raises BadZipFile at the end
            files.append(relative)
    return files


def extract_tree(archive: str | os.PathLike[str], out_dir: str | os.PathLike[str]) -> list[str]:
    """Unpack ``archive`` safely into ``out_dir`` (complete or absent), and any zip it contains.

    Mendeley's whole-dataset download is a zip of the dataset's own zips, so
    inner zips are unpacked next to themselves before the folder appears.
    """
    with atomic_dir(out_dir) as tmp:
        members = extract(Path(archive), tmp)
        for inner in sorted(tmp.rglob("*.zip")):
            members += extract(inner, inner.with_suffix(""))
            inner.unlink()
    log.info("extracted %d members of %s", len(members), archive)
    return members
