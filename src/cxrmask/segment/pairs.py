"""Find image/mask pairs in a folder by patterns, whatever the dataset's layout.

Lung-mask sets differ in layout (class folders, separate left/right masks,
suffixes), so the layout is config: ``images: "{group}/images/{id}.bmp"`` and
``masks: ["{group}/masks/{id}.bmp"]``. Wildcards shared by the image pattern
and a mask pattern pair the files; several mask patterns (Montgomery's
``leftMask`` and ``rightMask``) are unioned.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cxrmask.errors import ConfigError, InputError

log = logging.getLogger(__name__)

WILDCARD = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class SegPair:
    """One training example: an image and the mask files that together outline its lungs."""

    key: str
    image: Path
    masks: tuple[Path, ...]


def _compile(pattern: str) -> tuple[str, re.Pattern[str], list[str]]:
    """Turn ``a/{x}/b_{y}.png`` into a glob, an anchored regex and its wildcard names."""
    names = WILDCARD.findall(pattern)
    if not names:
        raise ConfigError(
            f"seg_data pattern {pattern!r} has no {{wildcard}}; name the varying part, e.g. {{id}}."
        )
    parts = WILDCARD.split(pattern)
    regex, seen = "", set()
    for index, part in enumerate(parts):
        if index % 2 == 0:
            regex += re.escape(part).replace(r"\*\*/", "(?:[^/]+/)*").replace(r"\*", "[^/]*")
        elif part in seen:
            regex += f"(?P={part})"
        else:
            regex += f"(?P<{part}>[^/]+)"
            seen.add(part)
    return WILDCARD.sub("*", pattern), re.compile(regex + r"\Z"), names


def _scan(root: Path, pattern: str) -> dict[tuple, Path]:
    """Every file under ``root`` matching ``pattern``, keyed by its wildcard values."""
    glob, regex, _ = _compile(pattern)
    found = {}
    for path in sorted(root.glob(glob)):
        match = regex.match(path.relative_to(root).as_posix())
        if match and path.is_file():
            found[tuple(sorted(match.groupdict().items()))] = path
    return found


def find_pairs(root: str | os.PathLike[str], images: str, masks: Sequence[str]) -> list[SegPair]:
    """Pair images with their masks under ``root``; images without every mask are skipped and counted."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: lung-mask dataset folder not found. Download it or fix seg_data.root.")
    if isinstance(masks, str):
        masks = [masks]
    _, _, image_names = _compile(images)
    image_files = _scan(root, images)
    if not image_files:
        raise InputError(f"{root}: no file matches seg_data.images {images!r}. Check the folder layout.")
    mask_indexes = []
    for pattern in masks:
        _, _, mask_names = _compile(pattern)
        shared = [name for name in mask_names if name in image_names]
        if not shared:
            raise ConfigError(f"seg_data.masks pattern {pattern!r} shares no wildcard with {images!r}.")
        index = {tuple(v for k, v in key if k in shared): path for key, path in _scan(root, pattern).items()}
        mask_indexes.append((shared, index))
    pairs, unpaired = [], []
    for key, image in image_files.items():
        values = dict(key)
        found = []
        for shared, index in mask_indexes:
            mask = index.get(tuple(values[name] for name in sorted(shared)))
            if mask is None:
                break
            found.append(mask)
        else:
            pairs.append(SegPair("/".join(values[name] for name in image_names), image, tuple(found)))
            continue
        unpaired.append(image)
    if unpaired:
        log.warning(
            "%d images under %s have no mask for every seg_data.masks pattern (--masks of cxrmask "
            "seg-finetune) and are left out (first: %s); add the mask or fix the pattern to use them",
            len(unpaired),
            root,
            unpaired[0],
        )
    if not pairs:
        raise InputError(f"{root}: no image has a matching mask (patterns {images!r} and {list(masks)!r}).")
    log.info("found %d image/mask pairs under %s", len(pairs), root)
    return pairs
