"""Box prompts: from a ground-truth mask while fine-tuning, from a learned prior on NIH images.

NIH images have no lung masks, so inference needs a prompt that needs no
ground truth. Chest radiographs are framed consistently, so the mean
normalised lung box of the fine-tuning masks, widened by a margin, is a
good prompt; ``per_lung`` prompts each lung with its own box and unions the
two masks, which follows the lungs' shape more closely.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from skimage.measure import label, regionprops

from cxrmask.atomic import write_json
from cxrmask.errors import ConfigError, InputError

PROMPTS = ("box_prior", "per_lung")


def mask_box(mask: np.ndarray) -> np.ndarray:
    """Tight box [x0, y0, x1, y1] around a boolean mask, in pixel coordinates (inclusive, as MedSAM)."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        raise InputError("empty mask: it has no foreground pixel, so it gives no box.")
    return np.array([xs.min(), ys.min(), xs.max(), ys.max()], dtype=np.float32)


def jitter_box(box: np.ndarray, max_shift: float, size: int, rng: np.random.Generator) -> np.ndarray:
    """Move each side of ``box`` outward by U[0, max_shift] pixels, clipped to the image.

    Outward only, as in MedSAM's training: a user's box is rarely tighter than
    the organ, and the model must learn not to leak out of a loose one.
    """
    shift = rng.uniform(0, max_shift, size=4) * np.array([-1, -1, 1, 1])
    return np.clip(box + shift, 0, size - 1).astype(np.float32)


def lung_boxes(mask: np.ndarray) -> np.ndarray:
    """Boxes of the two largest components, left to right in the image (2, 4).

    A mask with one component (lungs touching) is split at the midline of its box.
    """
    regions = sorted(regionprops(label(mask)), key=lambda r: r.area, reverse=True)[:2]
    if not regions:
        raise InputError("empty mask: it has no foreground pixel, so it gives no lung boxes.")
    if len(regions) == 1:
        box = mask_box(mask)
        mid = (box[0] + box[2]) / 2
        left, right = mask.copy(), mask.copy()
        left[:, int(mid) + 1 :] = False
        right[:, : int(mid) + 1] = False
        return np.stack([mask_box(left), mask_box(right)])
    boxes = [
        np.array([r.bbox[1], r.bbox[0], r.bbox[3] - 1, r.bbox[2] - 1], dtype=np.float32) for r in regions
    ]
    return np.stack(sorted(boxes, key=lambda b: b[0]))


@dataclass(frozen=True)
class BoxPrior:
    """Mean normalised lung boxes (fractions of width and height) learned from masks."""

    whole: tuple[float, float, float, float]
    lungs: tuple[tuple[float, float, float, float], tuple[float, float, float, float]]
    margin: float
    n_masks: int

    @classmethod
    def fit(cls, masks: list[np.ndarray], margin: float) -> BoxPrior:
        """Average the normalised boxes of ``masks``; ``margin`` widens each side by that fraction."""
        if not masks:
            raise InputError("no masks to learn a box prior from.")
        wholes, lungs = [], []
        for mask in masks:
            scale = np.array([mask.shape[1], mask.shape[0]] * 2, dtype=np.float64)
            wholes.append(mask_box(mask) / scale)
            lungs.append(lung_boxes(mask) / scale)
        whole = np.mean(wholes, axis=0)
        lung = np.mean(lungs, axis=0)
        return cls(
            whole=tuple(float(v) for v in whole),
            lungs=tuple(tuple(float(v) for v in box) for box in lung),
            margin=float(margin),
            n_masks=len(masks),
        )

    def boxes(self, prompt: str, height: int, width: int) -> np.ndarray:
        """Pixel boxes (K, 4) for an H x W image: one for ``box_prior``, two for ``per_lung``."""
        if prompt == "box_prior":
            normalised = np.array([self.whole])
        elif prompt == "per_lung":
            normalised = np.array(self.lungs)
        else:
            raise ConfigError(f"segment.prompt: {prompt!r} is not one of {list(PROMPTS)}.")
        widened = normalised + self.margin * np.array([-1, -1, 1, 1])
        # Same scale as fit() and scale_boxes(), so a prompt is the box the model was trained with.
        pixels = widened * np.array([width, height] * 2)
        return np.clip(pixels, 0, np.array([width - 1, height - 1] * 2))

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the prior as JSON (it travels with the fine-tuned checkpoint)."""
        write_json(path, asdict(self))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> BoxPrior:
        """Read a prior written by :meth:`save`."""
        data = json.loads(Path(path).read_text())
        return cls(
            whole=tuple(data["whole"]),
            lungs=tuple(tuple(box) for box in data["lungs"]),
            margin=data["margin"],
            n_masks=data["n_masks"],
        )
