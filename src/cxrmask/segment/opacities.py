"""Lesion-aware augmentation: dense opacities painted inside the training lungs, the mask kept.

A lung segmenter fine-tuned on mostly clear lungs learns that lung is dark,
so it cuts a dense finding out of the mask where the finding sits inside
the outline, or follows the density past the border where the finding
erases it; either way the mask's error follows the label. Painting opacities
of the shapes chest films show (a round mass, patchy consolidation, a broad
haze) at random places inside each training lung, up to the lung's edge,
with its ground-truth mask unchanged, teaches that dense tissue inside the
outline is still lung. It is the label-free form of the copy-paste
augmentation of semi-supervised segmentation (Bai et al., "Bidirectional
copy-paste", CVPR 2023): no lesion masks are needed, only lung masks.

The copies are made once, before the encoder runs, so decoder-mode
fine-tuning caches their embeddings like any other training image.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from cxrmask.segment.dataset import SegData
from cxrmask.segment.preprocess import resize_mask

KINDS = ("round", "patchy", "haze")
LESIONS_PER_IMAGE = (1, 3)  # inclusive range of opacities painted on one copy
STRENGTH = (0.45, 0.9)  # share of the way from the lung's own grey to soft tissue's, at the opacity's core
SOFT_TISSUE_PERCENTILE = 75  # of the pixels outside the lungs: mediastinum, diaphragm, chest wall


def _disc(shape: tuple[int, int], centre: tuple[float, float], radius: float, edge: float) -> np.ndarray:
    """A round opacity with a soft rim of width ``edge``, peak 1."""
    ys, xs = np.ogrid[: shape[0], : shape[1]]
    distance = np.hypot(ys - centre[0], xs - centre[1])
    return np.clip((radius - distance) / edge + 0.5, 0.0, 1.0)


def _opacity(kind: str, shape: tuple[int, int], centre: tuple[float, float], rng: np.random.Generator):
    """One opacity of ``kind`` centred at (row, col), values in [0, 1], sized as a share of the image."""
    side = shape[0]
    if kind == "round":
        radius = rng.uniform(0.03, 0.1) * side
        return _disc(shape, centre, radius, max(0.15 * radius, 1.0))
    ys, xs = np.ogrid[: shape[0], : shape[1]]
    ry, rx = rng.uniform(0.06, 0.16, size=2) * side
    envelope = np.exp(-(((ys - centre[0]) / ry) ** 2 + ((xs - centre[1]) / rx) ** 2))
    if kind == "haze":
        return envelope
    noise = ndi.gaussian_filter(rng.standard_normal(shape), 0.015 * side)
    patches = np.clip(noise / max(float(noise.std()), 1e-6) + 0.5, 0.0, 1.0)
    return np.clip(1.6 * envelope * patches, 0.0, 1.0)


def opacity_field(lungs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Opacities in [0, 1] inside ``lungs`` (bool, image grid): 1-3, each centred on a random lung pixel."""
    field = np.zeros(lungs.shape, np.float64)
    rows, cols = np.nonzero(lungs)
    for _ in range(int(rng.integers(LESIONS_PER_IMAGE[0], LESIONS_PER_IMAGE[1] + 1))):
        pick = int(rng.integers(0, rows.size))
        kind = KINDS[int(rng.integers(0, len(KINDS)))]
        field = np.maximum(field, _opacity(kind, lungs.shape, (rows[pick], cols[pick]), rng))
    return field * lungs


def paint_opacities(image: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``image`` (uint8) with opacities inside ``mask``'s lungs (any grid), brightened toward soft tissue.

    Each pixel moves a share of the way from its grey to the soft tissue's
    (a high percentile of the grey outside the lungs), never darker: dense
    as consolidation, and as bright as the border it may erase.
    """
    lungs = resize_mask(mask, image.shape[0]) if mask.shape != image.shape else mask.astype(bool)
    if not lungs.any():
        return image.copy()
    grey = image.astype(np.float64)
    outside = grey[~lungs]
    tissue = float(np.percentile(outside, SOFT_TISSUE_PERCENTILE)) if outside.size else 180.0
    strength = rng.uniform(*STRENGTH)
    painted = grey + strength * opacity_field(lungs, rng) * np.clip(tissue - grey, 0.0, None)
    return np.clip(np.rint(painted), 0, 255).astype(np.uint8)


def with_opacities(data: SegData, copies: int, seed: int) -> SegData:
    """``data`` with ``copies`` painted copies of each training item appended (same mask, box, split).

    Validation and test items are left as they are, so selection and the
    reported scores stay on real images; copies are keyed ``<key>+opacity<n>``.
    """
    train = np.flatnonzero(data.split == "train")
    if copies == 0 or train.size == 0:
        return data
    rng = np.random.default_rng(seed)
    order = np.repeat(train, copies)
    painted = np.stack([paint_opacities(data.images[i], data.masks[i], rng) for i in order])
    copy_number = np.tile(np.arange(1, copies + 1), train.size)
    keys = np.array([f"{data.keys[i]}+opacity{n}" for i, n in zip(order, copy_number, strict=True)])
    return SegData(
        keys=np.concatenate([data.keys, keys]),
        images=np.concatenate([data.images, painted]),
        masks=np.concatenate([data.masks, data.masks[order]]),
        boxes=np.concatenate([data.boxes, data.boxes[order]]),
        split=np.concatenate([data.split, data.split[order]]),
    )
