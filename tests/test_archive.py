"""extract(): complete for genuine archives, all-or-nothing refusal for hostile or broken ones.

Genuine archives are built in the real sources' layouts: NIH's
``images_001.tar.gz`` (``images/`` then ``images/00000001_000.png`` ..., 8-bit
grey PNG) and a Mendeley Data style zip of the RSUA lung-mask dataset (class
folders with ``Images``/``Masks`` subfolders of 256x256 8-bit BMP, plus NPY
copies).
"""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cxrmask.archive import extract, unsafe_name_reason
from cxrmask.errors import InputError
from cxrmask.imageio import read_grey, read_mask, write_png


def nih_tarball(folder: Path, count: int = 6, size: int = 256) -> tuple[bytes, dict[str, np.ndarray]]:
    """Bytes of an ``images_001.tar.gz`` laid out like NIH's, and the pixels of each PNG by name."""
    rng = np.random.default_rng(0)
    images: dict[str, np.ndarray] = {}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.addfile(_directory("images"))
        for index in range(count):
            name = f"{index // 3 + 1:08d}_{index % 3:03d}.png"
            pixels = rng.integers(0, 256, (size, size), dtype=np.uint8)
            write_png(folder / name, pixels)
            tar.add(folder / name, arcname=f"images/{name}")
            images[name] = pixels
    return buffer.getvalue(), images


def rsua_zip(path: Path) -> dict[str, np.ndarray]:
    """A Mendeley-style zip: <dataset>/<class>/{Images,Masks}/*.bmp plus NPY copies; returns BMP pixels."""
    rng = np.random.default_rng(1)
    written: dict[str, np.ndarray] = {}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as bundle:
        for label in ("COVID-19", "Non_COVID", "Pneumonia"):
            for index in range(1, 3):
                image = rng.integers(0, 256, (256, 256), dtype=np.uint8)
                mask = np.zeros((256, 256), dtype=np.uint8)
                mask[60:200, 30:110] = mask[60:200, 146:226] = 255
                for role, pixels in (("Image", image), ("Mask", mask)):
                    name = f"Validated/{label}/{role}s/{label}_{index}_{role.lower()}.bmp"
                    encoded = io.BytesIO()
                    Image.fromarray(pixels, mode="L").save(encoded, format="BMP")
                    bundle.writestr(name, encoded.getvalue())
                    written[name] = pixels
                    array = io.BytesIO()
                    np.save(array, pixels[..., None].astype(np.float32) / 255)
                    bundle.writestr(name.replace(".bmp", ".npy"), array.getvalue())
    return written


def _directory(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode = tarfile.DIRTYPE, 0o755
    return info


def _file(name: str, data: bytes = b"payload") -> tuple[tarfile.TarInfo, io.BytesIO]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, io.BytesIO(data)


def _link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, None


def _tar(path: Path, members: list[tuple[tarfile.TarInfo, io.BytesIO | None]], mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode) as tar:
        for info, data in members:
            tar.addfile(info, data)
    return path


def _leftovers(folder: Path) -> list[str]:
    """Anything extraction may have left beside the target (temporary folders start with a dot)."""
    return sorted(entry.name for entry in folder.iterdir() if entry.name != "in")


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "in").mkdir()
    return tmp_path


def test_nih_tarball_extracts_completely(workdir: Path) -> None:
    payload, images = nih_tarball(workdir / "in", count=7)
    archive = workdir / "in" / "images_001.tar.gz"
    archive.write_bytes(payload)
    target = workdir / "nih"

    files = extract(archive, target, progress=False)

    assert files == sorted(target / "images" / name for name in images)
    assert sorted(p.relative_to(target).as_posix() for p in target.rglob("*")) == ["images"] + [
        f"images/{name}" for name in sorted(images)
    ]
    for name, pixels in images.items():
        np.testing.assert_array_equal(read_grey(target / "images" / name), pixels)
    assert _leftovers(workdir) == ["nih"]


def test_plain_tar_extracts(workdir: Path) -> None:
    archive = _tar(
        workdir / "in" / "lists.tar", [_file("train_val_list.txt", b"00000001_000.png\n")], mode="w"
    )
    files = extract(archive, workdir / "out", progress=False)
    assert [f.read_text() for f in files] == ["00000001_000.png\n"]


def test_mendeley_zip_extracts_completely(workdir: Path) -> None:
    archive = workdir / "in" / "2jg8vfdmpm-1.zip"
    written = rsua_zip(archive)
    target = workdir / "rsua"

    files = extract(archive, target, progress=False)

    assert len(files) == 2 * len(written)
    for name, pixels in written.items():
        if "/Masks/" in name:
            np.testing.assert_array_equal(read_mask(target / name), pixels > 0)
        else:
            np.testing.assert_array_equal(read_grey(target / name), pixels)
    assert _leftovers(workdir) == ["rsua"]


@pytest.mark.parametrize(
    ("member", "reason"),
    [
        (_file("../evil.txt"), "'..'"),
        (_file("images/../../evil.txt"), "'..'"),
        (_file("/tmp/evil.txt"), "absolute path"),
        (_link("images/passwd", "/etc/passwd"), "absolute path"),
        (_link("images/escape", "../../outside"), "outside the archive"),
        (_link("images/hard", "../outside", tarfile.LNKTYPE), "outside the archive"),
    ],
    ids=["dotdot", "nested-dotdot", "absolute", "abs-symlink", "escaping-symlink", "escaping-hardlink"],
)
def test_hostile_tar_member_refuses_the_whole_archive(
    workdir: Path, member: tuple[tarfile.TarInfo, io.BytesIO | None], reason: str
) -> None:
    good = [_file(f"images/0000000{i}_000.png") for i in range(1, 4)]  # extracted before the bad one arrives
    archive = _tar(workdir / "in" / "images_001.tar.gz", [*good, member])

    with pytest.raises(InputError) as caught:
        extract(archive, workdir / "nih", progress=False)

    message = str(caught.value)
    assert str(archive) in message and repr(member[0].name) in message and reason in message
    assert _leftovers(workdir) == []  # neither the target nor its temporary sibling
    assert not (workdir.parent / "evil.txt").exists() and not (workdir.parent / "outside").exists()


def test_device_file_is_refused(workdir: Path) -> None:
    device = tarfile.TarInfo("images/null")
    device.type, device.devmajor, device.devminor = tarfile.CHRTYPE, 1, 3
    archive = _tar(workdir / "in" / "a.tar.gz", [(device, None)])
    with pytest.raises(InputError, match="device file"):
        extract(archive, workdir / "out", progress=False)
    assert _leftovers(workdir) == []


def test_symlink_inside_the_archive_is_kept(workdir: Path) -> None:
    archive = _tar(
        workdir / "in" / "a.tar.gz", [_file("images/a.png", b"png"), _link("latest.png", "images/a.png")]
    )
    extract(archive, workdir / "out", progress=False)
    assert (workdir / "out" / "latest.png").read_bytes() == b"png"


@pytest.mark.parametrize(
    "name", ["/abs.txt", "../up.txt", "data/../../up.txt", "C:\\win.txt", "C:/win.txt", "..\\..\\up.txt"]
)
def test_hostile_zip_member_refuses_the_whole_archive(workdir: Path, name: str) -> None:
    archive = workdir / "in" / "dataset.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("Validated/Pneumonia/Images/pneumonia_1_image.bmp", b"BM")
        bundle.writestr(zipfile.ZipInfo(name), b"evil")

    with pytest.raises(InputError) as caught:
        extract(archive, workdir / "rsua", progress=False)

    assert str(archive) in str(caught.value) and repr(name) in str(caught.value)
    assert _leftovers(workdir) == []


@pytest.mark.parametrize("keep", [0.5, -4], ids=["half", "gzip-trailer-missing"])
def test_truncated_targz_is_caught(workdir: Path, keep: float) -> None:
    payload, _ = nih_tarball(workdir / "in", count=4)
    cut = int(len(payload) * keep) if keep > 0 else len(payload) + int(keep)
    archive = workdir / "in" / "images_001.tar.gz"
    archive.write_bytes(payload[:cut])

    with pytest.raises(InputError) as caught:
        extract(archive, workdir / "nih", progress=False)

    message = str(caught.value)
    assert str(archive) in message and "truncated or corrupt" in message and "download it again" in message
    assert _leftovers(workdir) == []


def test_truncated_zip_is_caught(workdir: Path) -> None:
    archive = workdir / "in" / "dataset.zip"
    rsua_zip(archive)
    archive.write_bytes(archive.read_bytes()[:-300])  # the central directory is at the end
    with pytest.raises(InputError, match="truncated or corrupt"):
        extract(archive, workdir / "rsua", progress=False)
    assert _leftovers(workdir) == []


def test_corrupt_zip_member_is_caught(workdir: Path) -> None:
    archive = workdir / "in" / "dataset.zip"
    data = bytes(range(256)) * 64
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as bundle:
        bundle.writestr("a.bin", data)
    raw = bytearray(archive.read_bytes())
    raw[raw.index(data) + 100] ^= 0xFF  # one flipped byte: the CRC no longer matches
    archive.write_bytes(bytes(raw))
    with pytest.raises(InputError, match="truncated or corrupt"):
        extract(archive, workdir / "out", progress=False)
    assert _leftovers(workdir) == []


def test_failed_extraction_keeps_the_previous_complete_target(workdir: Path) -> None:
    target = workdir / "nih"
    good = _tar(workdir / "in" / "v1.tar.gz", [_file("images/a.png", b"v1")])
    extract(good, target, progress=False)
    broken = workdir / "in" / "v2.tar.gz"
    broken.write_bytes(
        _tar(workdir / "in" / "tmp.tar.gz", [_file("images/a.png", b"v2" * 5000)]).read_bytes()[:60]
    )

    with pytest.raises(InputError):
        extract(broken, target, progress=False)
    assert (target / "images" / "a.png").read_bytes() == b"v1"

    extract(_tar(workdir / "in" / "v3.tar.gz", [_file("images/b.png", b"v3")]), target, progress=False)
    assert sorted(p.name for p in (target / "images").iterdir()) == ["b.png"]  # replaced as a whole
    assert _leftovers(workdir) == ["nih"]


def test_unknown_format_and_missing_archive_are_clear_errors(workdir: Path) -> None:
    rar = workdir / "in" / "data.rar"
    rar.write_bytes(b"Rar!")
    with pytest.raises(InputError, match="unknown archive format"):
        extract(rar, workdir / "out", progress=False)
    with pytest.raises(InputError, match="does not exist"):
        extract(workdir / "in" / "missing.zip", workdir / "out", progress=False)


def test_unsafe_name_reason() -> None:
    assert unsafe_name_reason("images/00000001_000.png") is None
    assert unsafe_name_reason("a/..b/c..d") is None  # dots inside names are fine
    assert unsafe_name_reason("a/../../b") == "contains a '..' component"
    assert unsafe_name_reason("\\\\server\\share") == "is an absolute path"
    assert unsafe_name_reason("D:file") == "starts with a drive letter"
