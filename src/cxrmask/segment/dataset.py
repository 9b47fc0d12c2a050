"""The fine-tuning set, decoded once into arrays at the segmenter's sizes.

Images are stored as uint8 at the encoder's input size and masks at the
decoder's output size, so each epoch reads a compact array instead of
decoding BMPs, and fine-tuning data for ViT-B (1024²) stays ~1 MB an image.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from cxrmask.atomic import atomic_path
from cxrmask.errors import InputError
from cxrmask.imageio import read_grey, read_mask
from cxrmask.segment.pairs import SegPair
from cxrmask.segment.preprocess import resize_grey, resize_mask, scale_boxes
from cxrmask.segment.prompts import mask_box
from cxrmask.segment.splits import group_split

log = logging.getLogger(__name__)


@dataclass
class SegData:
    """Arrays for fine-tuning: images (N,S,S) uint8, masks (N,m,m) bool, boxes (N,4) at S, split per item."""

    keys: np.ndarray
    images: np.ndarray
    masks: np.ndarray
    boxes: np.ndarray
    split: np.ndarray

    def subset(self, split: str) -> SegData:
        """The items of one split ("train", "val" or "test")."""
        keep = self.split == split
        return SegData(
            self.keys[keep], self.images[keep], self.masks[keep], self.boxes[keep], self.split[keep]
        )

    def subset_range(self, start: int, stop: int) -> SegData:
        """Items ``start`` to ``stop`` (batches of an evaluation)."""
        part = slice(start, stop)
        return SegData(
            self.keys[part], self.images[part], self.masks[part], self.boxes[part], self.split[part]
        )

    def __len__(self) -> int:
        return len(self.keys)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write all arrays to one ``.npz`` atomically."""
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            np.savez(
                handle,
                keys=self.keys,
                images=self.images,
                masks=self.masks,
                boxes=self.boxes,
                split=self.split,
            )

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> SegData:
        """Read arrays written by :meth:`save`."""
        with np.load(path, allow_pickle=False) as data:
            return cls(data["keys"], data["images"], data["masks"], data["boxes"], data["split"])


def load_pair(pair: SegPair) -> tuple[np.ndarray, np.ndarray]:
    """Decode one pair: grey image and the union of its masks, checked to agree in size and be non-empty."""
    image = read_grey(pair.image)
    mask = np.zeros(image.shape, dtype=bool)
    for path in pair.masks:
        part = read_mask(path)
        if part.shape != image.shape:
            raise InputError(
                f"{path}: mask is {part.shape[::-1]} but its image {pair.image} is {image.shape[::-1]}."
            )
        mask |= part
    if not mask.any():
        raise InputError(f"{pair.masks[0]}: empty mask (no foreground pixel) for {pair.image}.")
    return image, mask


def assign_split(n: int, val_fraction: float, seed: int) -> np.ndarray:
    """Random train/val labels with at least one of each when there are two or more items."""
    rng = np.random.default_rng(seed)
    n_val = round(val_fraction * n)
    if n > 1:
        n_val = min(max(n_val, 1), n - 1)
    split = np.full(n, "train", dtype="<U5")
    split[rng.permutation(n)[:n_val]] = "val"
    return split


def prepare(
    pairs: Sequence[SegPair],
    input_size: int,
    mask_size: int,
    val_fraction: float,
    seed: int,
    on_bad: str = "fail",
    test_fraction: float = 0.0,
    groups: Mapping[str, str] | None = None,
) -> SegData:
    """Decode, check and resize every pair; bad pairs fail the job or are skipped and counted (``on_bad``).

    With ``test_fraction`` or ``groups`` (pair key -> patient id) the split is
    three-way and patient-disjoint (:func:`cxrmask.segment.splits.group_split`).
    """
    keys, images, masks, boxes, skipped = [], [], [], [], []
    for pair in tqdm(pairs, desc="decode lung-mask pairs", unit="pair"):
        try:
            image, mask = load_pair(pair)
        except InputError as exc:
            if on_bad != "skip":
                raise InputError(f"{exc} Fix or remove the pair, or set data.on_bad_image: skip.") from exc
            log.warning("skipped: %s", exc)
            skipped.append(pair.key)
            continue
        height, width = image.shape
        keys.append(pair.key)
        images.append(resize_grey(image, input_size))
        masks.append(resize_mask(mask, mask_size))
        boxes.append(scale_boxes(mask_box(mask), height, width, input_size))
    if skipped:
        log.warning("%d of %d pairs skipped as unreadable or empty", len(skipped), len(pairs))
    if len(keys) < 2:
        raise InputError(
            f"only {len(keys)} usable image/mask pairs: fine-tuning needs a train and a val image."
        )
    if groups is not None or test_fraction:
        patients = [groups[key] for key in keys] if groups is not None else None
        split = group_split(len(keys), val_fraction, test_fraction, seed, patients)
    else:
        split = assign_split(len(keys), val_fraction, seed)
    return SegData(
        keys=np.array(keys),
        images=np.stack(images),
        masks=np.stack(masks),
        boxes=np.stack(boxes).astype(np.float32),
        split=split,
    )
