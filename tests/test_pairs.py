"""cxrmask.segment.pairs: image/mask pairing from layout patterns, for the layouts lung-mask sets use."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from cxrmask.errors import ConfigError, InputError
from cxrmask.segment.pairs import SegPair, find_pairs


def _touch(root: Path, *relatives: str) -> None:
    """Create empty files: pairing looks only at names, never at content."""
    for relative in relatives:
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")


def _by_key(pairs: list[SegPair]) -> dict[str, SegPair]:
    return {pair.key: pair for pair in pairs}


@pytest.fixture
def airlangga(tmp_path: Path) -> Path:
    """Class folders, each with images/ and masks/, inside the archive's own top folder."""
    root = tmp_path / "airlangga"
    for group in ("Normal", "Pneumonia", "Tuberculosis"):
        for name in ("1", "2"):
            _touch(root, f"RSUA/{group}/images/{name}.bmp", f"RSUA/{group}/masks/{name}.bmp")
    return root


def test_airlangga_class_folders_with_a_doublestar_prefix(airlangga: Path) -> None:
    pairs = find_pairs(airlangga, "**/{group}/images/{id}.bmp", ["**/{group}/masks/{id}.bmp"])
    found = _by_key(pairs)
    assert sorted(found) == [f"{g}/{i}" for g in ("Normal", "Pneumonia", "Tuberculosis") for i in ("1", "2")]
    for key, pair in found.items():
        group, name = key.split("/")
        assert pair.image == airlangga / "RSUA" / group / "images" / f"{name}.bmp"
        # Same id in another class folder must never be taken: the group wildcard is shared too.
        assert pair.masks == (airlangga / "RSUA" / group / "masks" / f"{name}.bmp",)


def test_doublestar_matches_zero_or_many_folders(tmp_path: Path) -> None:
    _touch(tmp_path, "Normal/images/a.bmp", "Normal/masks/a.bmp")
    _touch(tmp_path, "x/y/z/Covid/images/b.bmp", "x/y/z/Covid/masks/b.bmp")
    pairs = find_pairs(tmp_path, "**/{group}/images/{id}.bmp", ["**/{group}/masks/{id}.bmp"])
    assert sorted(_by_key(pairs)) == ["Covid/b", "Normal/a"]


def test_without_doublestar_the_pattern_is_anchored_at_the_root(airlangga: Path) -> None:
    # The files live one folder deeper than the pattern says: nothing matches, and the error says which.
    with pytest.raises(InputError, match=r"no file matches seg_data.images '\{group\}/images/\{id\}.bmp'"):
        find_pairs(airlangga, "{group}/images/{id}.bmp", ["{group}/masks/{id}.bmp"])


def test_montgomery_left_and_right_masks_are_both_required_and_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    for name in ("MCUCXR_0001_0", "MCUCXR_0002_0", "MCUCXR_0003_1"):
        _touch(tmp_path, f"CXR_png/{name}.png", f"ManualMask/leftMask/{name}.png")
    _touch(tmp_path, "ManualMask/rightMask/MCUCXR_0001_0.png", "ManualMask/rightMask/MCUCXR_0003_1.png")
    with caplog.at_level(logging.WARNING, logger="cxrmask.segment.pairs"):
        pairs = find_pairs(
            tmp_path,
            "CXR_png/{id}.png",
            ["ManualMask/leftMask/{id}.png", "ManualMask/rightMask/{id}.png"],
        )
    found = _by_key(pairs)
    assert sorted(found) == ["MCUCXR_0001_0", "MCUCXR_0003_1"]
    assert found["MCUCXR_0001_0"].masks == (
        tmp_path / "ManualMask/leftMask/MCUCXR_0001_0.png",
        tmp_path / "ManualMask/rightMask/MCUCXR_0001_0.png",
    )
    # The image with only a left mask is skipped and counted, not paired with half a mask.
    assert "1 images" in caplog.text and "left out" in caplog.text


def test_unpaired_images_are_skipped_and_counted(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _touch(tmp_path, *(f"img/{i}.png" for i in range(5)), "mask/0.png", "mask/3.png", "mask/9.png")
    with caplog.at_level(logging.INFO, logger="cxrmask.segment.pairs"):
        pairs = find_pairs(tmp_path, "img/{id}.png", ["mask/{id}.png"])
    assert [pair.key for pair in pairs] == ["0", "3"]
    assert "3 images" in caplog.text
    assert "found 2 image/mask pairs" in caplog.text


def test_suffix_in_the_same_folder(tmp_path: Path) -> None:
    """Shenzhen style: ``CHNCXR_0001_0.png`` with ``CHNCXR_0001_0_mask.png``."""
    _touch(tmp_path, "img/CHNCXR_0001_0.png", "img/CHNCXR_0002_1.png", "mask/CHNCXR_0001_0_mask.png")
    pairs = find_pairs(tmp_path, "img/{id}.png", "mask/{id}_mask.png")
    assert [(p.key, p.masks) for p in pairs] == [
        ("CHNCXR_0001_0", (tmp_path / "mask/CHNCXR_0001_0_mask.png",))
    ]


def test_mask_pattern_may_omit_an_image_wildcard(tmp_path: Path) -> None:
    """One mask per id whatever the class folder: pairing uses only the shared wildcard."""
    _touch(tmp_path, "images/Normal/7.png", "images/TB/8.png", "masks/7.png", "masks/8.png")
    pairs = find_pairs(tmp_path, "images/{group}/{id}.png", ["masks/{id}.png"])
    assert {p.key: p.masks for p in pairs} == {
        "Normal/7": (tmp_path / "masks/7.png",),
        "TB/8": (tmp_path / "masks/8.png",),
    }


def test_folders_that_match_the_pattern_are_not_files(tmp_path: Path) -> None:
    _touch(tmp_path, "img/a.png", "mask/a.png")
    (tmp_path / "img" / "b.png").mkdir()
    assert [p.key for p in find_pairs(tmp_path, "img/{id}.png", ["mask/{id}.png"])] == ["a"]


def test_no_matching_mask_at_all_is_an_input_error(tmp_path: Path) -> None:
    _touch(tmp_path, "img/a.png", "img/b.png", "mask/c.png")
    with pytest.raises(InputError, match="no image has a matching mask"):
        find_pairs(tmp_path, "img/{id}.png", ["mask/{id}.png"])


def test_missing_root_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"not found.*seg_data\.root"):
        find_pairs(tmp_path / "absent", "img/{id}.png", ["mask/{id}.png"])


@pytest.mark.parametrize(
    ("images", "masks"),
    [("img/a.png", ["mask/{id}.png"]), ("img/{id}.png", ["mask/a.png"])],
    ids=["image-pattern", "mask-pattern"],
)
def test_pattern_without_a_wildcard_is_a_config_error(tmp_path: Path, images: str, masks: list[str]) -> None:
    _touch(tmp_path, "img/a.png", "mask/a.png")
    with pytest.raises(ConfigError, match=r"has no \{wildcard\}"):
        find_pairs(tmp_path, images, masks)


def test_mask_pattern_sharing_no_wildcard_is_a_config_error(tmp_path: Path) -> None:
    _touch(tmp_path, "img/a.png", "mask/a.png")
    with pytest.raises(ConfigError, match=r"shares no wildcard with 'img/\{id\}.png'"):
        find_pairs(tmp_path, "img/{id}.png", ["img/{id}.png", "mask/{name}.png"])
