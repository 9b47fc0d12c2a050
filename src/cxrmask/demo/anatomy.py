"""The chest around real lungs: lung shapes, where they sit in the frame, and the anatomy drawn around them.

Lung outlines are real annotated lung masks (V7 Labs, shipped in
torchxrayvision's wheel), so a pretrained medical SAM sees lungs it knows.
The chest is drawn around them (soft tissue, mediastinum, heart, diaphragm,
ribs, clavicles, vessels) from the placed masks' geometry, kept in a
:class:`Thorax` that the finding drawers use too.
"""

from __future__ import annotations

import functools
import io
import math
import zipfile
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage as ndi

from cxrmask.errors import InputError
from cxrmask.shipped import PACKAGE, shipped_file

LUNG_SHAPES_ZIP = "data/semantic_masks_v7labs_lungs.zip"


@dataclass(frozen=True)
class Placement:
    """Where a real lung shape lands in the frame, in fractions of the frame side."""

    shape_index: int
    centre_x: float
    top: float
    width: float
    aspect: float
    angle_deg: float


@functools.lru_cache(maxsize=2)
def load_lung_shapes(max_shapes: int = 64, side: int = 384) -> tuple[np.ndarray, ...]:
    """Return up to ``max_shapes`` real two-lung masks, each a float (2, h, w) stack cropped to both lungs.

    Channel 0 is the lung on the image's left (the patient's right). Masks
    are read in name order and kept only when they show two clear lungs side
    by side, not cut by the frame: some annotations in the set are empty,
    cropped or fragmentary, and a fragment would make an implausible chest.
    Decoding all 517 large PNGs takes ~15 s, so reading stops at
    ``max_shapes`` good ones (the first ones in name order, so the set is
    fixed for a given torchxrayvision release).
    """
    payload = _lung_shapes_archive()
    shapes: list[np.ndarray] = []
    with zipfile.ZipFile(io.BytesIO(payload)) as archive:
        for name in sorted(n for n in archive.namelist() if not n.endswith("/")):
            with Image.open(io.BytesIO(archive.read(name))) as image:
                image.thumbnail((side, side), Image.Resampling.BILINEAR)
                mask = np.asarray(image.convert("L")) > 127
            pair = _two_lungs(mask)
            if pair is not None:
                shapes.append(pair)
                if len(shapes) == max_shapes:
                    break
    if not shapes:
        raise InputError(f"{PACKAGE}/{LUNG_SHAPES_ZIP}: no usable two-lung mask found in the archive.")
    return tuple(shapes)


def _lung_shapes_archive() -> bytes:
    """Read the lung-mask archive from torchxrayvision's installed files (without importing it)."""
    path = shipped_file(LUNG_SHAPES_ZIP)
    if path is None:
        raise InputError(
            f"{PACKAGE}/{LUNG_SHAPES_ZIP}: not found, so the demo generator has no real lung shapes to draw "
            "from. Install the torchxrayvision wheel (it ships this archive) into this environment."
        )
    return path.read_bytes()


def _two_lungs(mask: np.ndarray) -> np.ndarray | None:
    """Return the two lungs as a cropped, smoothed (2, h, w) float stack; None if it is not two lungs."""
    labels, count = ndi.label(mask)
    if count < 2:
        return None
    sizes = ndi.sum(mask, labels, range(1, count + 1))
    order = np.argsort(sizes)[::-1]
    first, second = sizes[order[0]], sizes[order[1]]
    if second < 0.4 * first or sizes.sum() - first - second > 0.03 * sizes.sum():
        return None
    lungs = [ndi.binary_fill_holes(labels == order[k] + 1) for k in range(2)]
    both = lungs[0] | lungs[1]
    rows, cols = np.nonzero(both)
    height, width = mask.shape
    if rows.min() == 0 or cols.min() == 0 or rows.max() == height - 1 or cols.max() == width - 1:
        return None
    box_h, box_w = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
    if not 0.6 < box_h / box_w < 1.3 or box_w < 0.4 * width:
        return None
    centres = [ndi.center_of_mass(lung) for lung in lungs]
    if abs(centres[0][1] - centres[1][1]) < 0.35 * box_w or abs(centres[0][0] - centres[1][0]) > 0.25 * box_h:
        return None
    if centres[0][1] > centres[1][1]:
        lungs.reverse()
    crop = (slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1))
    stack = np.pad(np.stack([lung[crop] for lung in lungs]).astype(np.float32), ((0, 0), (3, 3), (3, 3)))
    return ndi.gaussian_filter(stack, sigma=(0, 1.0, 1.0))


def place_lungs(shape: np.ndarray, placement: Placement, size: int) -> np.ndarray:
    """Map a (2, h, w) lung stack into a (2, size, size) frame: scale, aspect, rotation, shift (bilinear)."""
    _, crop_h, crop_w = shape.shape
    scale_x = placement.width * size / crop_w
    scale_y = scale_x * placement.aspect
    centre_out = (placement.centre_x * size, placement.top * size + crop_h * scale_y / 2.0)
    angle = math.radians(placement.angle_deg)
    cos, sin = math.cos(angle), math.sin(angle)
    # Output pixel (x, y) -> input pixel: rotate about the output centre, unscale, shift to the crop centre.
    a, b = cos / scale_x, -sin / scale_x
    d, e = sin / scale_y, cos / scale_y
    c = crop_w / 2.0 - a * centre_out[0] - b * centre_out[1]
    f = crop_h / 2.0 - d * centre_out[0] - e * centre_out[1]
    placed = [
        Image.fromarray(channel, mode="F").transform(
            (size, size), Image.Transform.AFFINE, (a, b, c, d, e, f), resample=Image.Resampling.BILINEAR
        )
        for channel in shape
    ]
    return np.stack([np.asarray(channel, dtype=np.float32) for channel in placed])


def smoothstep(values: np.ndarray) -> np.ndarray:
    """Hermite ramp of ``values`` clipped to [0, 1]: soft edges without overshoot."""
    t = np.clip(values, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _polyline(canvas: ImageDraw.ImageDraw, xs: np.ndarray, ys: np.ndarray, width: float) -> None:
    """Draw a thick polyline (ribs, clavicles) at full strength; blurring later softens its edges."""
    canvas.line(list(zip(xs.tolist(), ys.tolist(), strict=True)), fill=1.0, width=max(round(width), 1))


def _smooth_field(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Smooth random field of unit-ish amplitude varying over ``size / cells`` pixels (bicubic upsampling)."""
    coarse = Image.fromarray(rng.standard_normal((cells, cells)).astype(np.float32), mode="F")
    return np.array(coarse.resize((size, size), Image.Resampling.BICUBIC), dtype=np.float32)


def resize(array: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize of a float image to (size, size)."""
    if array.shape == (size, size):
        return array.astype(np.float32)
    image = Image.fromarray(array.astype(np.float32), mode="F")
    return np.array(image.resize((size, size), Image.Resampling.BILINEAR), dtype=np.float32)


def _inner_depth(mask: np.ndarray) -> np.ndarray:
    """Distance in pixels from each lung pixel to the nearest non-lung pixel (0 outside).

    Computed on the lungs' bounding box only: the transform is the slowest
    step of drawing an image, and the frame around the lungs adds nothing.
    """
    depth = np.zeros(mask.shape, np.float32)
    rows, cols = np.nonzero(mask)
    box = (slice(max(rows.min() - 1, 0), rows.max() + 2), slice(max(cols.min() - 1, 0), cols.max() + 2))
    depth[box] = ndi.distance_transform_edt(mask[box])
    return depth


@dataclass(frozen=True)
class Thorax:
    """Lung geometry at the working size that anatomy and findings are both drawn from."""

    size: int
    per_lung: np.ndarray  # (2, size, size) soft masks, image-left lung first
    soft: np.ndarray  # union, soft
    mask: np.ndarray  # union, boolean
    depth: np.ndarray  # distance to the lung edge inside the lungs, pixels
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 of both lungs
    lung_boxes: tuple[tuple[float, float, float, float], ...]
    midline: float
    ys: np.ndarray  # row coordinate of every pixel
    xs: np.ndarray  # column coordinate of every pixel

    @classmethod
    def from_masks(cls, per_lung: np.ndarray) -> Thorax:
        """Derive boxes, midline and inner depth from the two placed lung masks."""
        size = per_lung.shape[-1]
        soft = np.maximum(per_lung[0], per_lung[1])
        mask = soft > 0.5
        boxes = []
        for lung in per_lung:
            rows, cols = np.nonzero(lung > 0.5)
            boxes.append((float(cols.min()), float(rows.min()), float(cols.max()), float(rows.max())))
        box = (
            min(b[0] for b in boxes),
            min(b[1] for b in boxes),
            max(b[2] for b in boxes),
            max(b[3] for b in boxes),
        )
        midline = (boxes[0][2] + boxes[1][0]) / 2.0
        ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
        return cls(size, per_lung, soft, mask, _inner_depth(mask), box, tuple(boxes), midline, ys, xs)


def draw_anatomy(thorax: Thorax, rng: np.random.Generator, heart_scale: float) -> np.ndarray:
    """Return the chest's density map (bright = dense) at the working size, before findings and noise."""
    size, ys, xs = thorax.size, thorax.ys, thorax.xs
    x0, y0, x1, y1 = thorax.box
    mid = thorax.midline
    half_span = (x1 - x0) / 2.0

    # Body: a soft-tissue cylinder, widening into the shoulders above the apices.
    body_half = rng.uniform(0.42, 0.54) * size
    shoulder = 1.0 / (1.0 + np.exp((ys - (y0 + 0.02 * size)) / (0.04 * size)))
    half_width = body_half + (0.7 * size - body_half) * shoulder
    across = np.clip(1.0 - ((xs - mid) / half_width) ** 2, 0.0, 1.0)
    inside_body = smoothstep(across / 0.15)
    thickness = np.sqrt(across)
    background = rng.uniform(0.02, 0.14)
    density = background + inside_body * (
        rng.uniform(0.22, 0.32) - background + rng.uniform(0.2, 0.28) * thickness
    )

    # Mediastinum, heart and abdomen: dense tissue between the lungs and below their bases, of similar
    # density, so they merge under the diaphragm's domes as on a film.
    between = _between_lungs(thorax) * (np.abs(xs - mid) < 0.17 * size)
    heart_cx = mid + 0.04 * size * heart_scale
    heart_cy = y1 - rng.uniform(0.12, 0.16) * size
    heart_a, heart_b = rng.uniform(0.12, 0.15) * size * heart_scale, rng.uniform(0.1, 0.12) * size
    heart = smoothstep((1.0 - ((xs - heart_cx) / heart_a) ** 2 - ((ys - heart_cy) / heart_b) ** 2) / 0.6)
    lowest = np.where(thorax.mask.any(axis=0), size - 1 - np.argmax(thorax.mask[::-1], axis=0), -1)
    cols = np.nonzero(lowest >= 0)[0]
    base = np.interp(np.arange(size), cols, lowest[cols]).astype(np.float32)
    base = ndi.gaussian_filter1d(base, 0.03 * size, mode="nearest")
    abdomen = 1.0 / (1.0 + np.exp(-(ys - base[None, :] - 0.01 * size) / (0.015 * size)))
    dense = rng.uniform(0.14, 0.2)
    density += np.maximum(
        dense * np.maximum(between, heart), dense * rng.uniform(0.85, 1.1) * abdomen * inside_body
    )
    spine = np.exp(-(((xs - mid) / (0.028 * size)) ** 2))
    vertebrae = 0.7 + 0.3 * np.cos(2.0 * np.pi * (ys - y0) / (0.052 * size))
    density += rng.uniform(0.02, 0.045) * spine * vertebrae

    # Bones: posterior ribs arching from the spine, fainter anterior ribs, clavicles.
    posterior = Image.new("F", (size, size), 0.0)
    anterior = Image.new("F", (size, size), 0.0)
    clavicles = Image.new("F", (size, size), 0.0)
    t = np.linspace(0.0, 1.0, 16)
    rib_width = rng.uniform(0.016, 0.022) * size
    lateral = half_span + 0.03 * size
    for side in (-1.0, 1.0):
        y_start = y0 - 0.03 * size
        for k in range(11):
            curve = rng.uniform(0.14, 0.2)
            px = mid + side * (0.035 * size + t * lateral)
            py = y_start + size * (curve * t**2.5 - 0.06 * t)
            _polyline(ImageDraw.Draw(posterior), px, py, rib_width)
            ax = mid + side * (lateral + 0.035 * size) * (1.0 - 0.65 * t)
            ay = py[-1] + 0.16 * size * t**0.85
            _polyline(ImageDraw.Draw(anterior), ax, ay, rib_width * 0.8)
            y_start += (y1 - y0) / 10.5 * (0.85 + 0.03 * k) + rng.normal(0.0, 0.003 * size)
        cx = mid + side * (0.045 * size + t * 0.3 * size)
        cy = y0 + 0.035 * size - 0.11 * size * t + 0.025 * size * np.sin(np.pi * t)
        _polyline(ImageDraw.Draw(clavicles), cx, cy, rng.uniform(0.022, 0.03) * size)
    ribs = np.asarray(posterior) + rng.uniform(0.3, 0.6) * np.asarray(anterior)
    lateral_fade = np.exp(-((np.maximum(np.abs(xs - mid) - half_span, 0.0) / (0.05 * size)) ** 2))
    bones = ribs * lateral_fade * rng.uniform(0.035, 0.06) + np.asarray(clavicles) * rng.uniform(0.06, 0.1)
    density += ndi.gaussian_filter(bones, 0.004 * size) * inside_body * (1.0 - 0.7 * abdomen)

    # Lungs: air lowers the density, more where the lung is thick; vessels fan out from the hila.
    air = thorax.soft * (0.45 + 0.55 * smoothstep(thorax.depth / (0.07 * size)))
    density -= rng.uniform(0.3, 0.4) * air
    density += rng.uniform(0.07, 0.12) * _vessels(thorax, rng) * thorax.soft

    # Slow variation of exposure across the film.
    density += rng.uniform(0.02, 0.05) * _smooth_field(rng, size, 5)
    return density


def _between_lungs(thorax: Thorax) -> np.ndarray:
    """Soft map of the mediastinum: pixels with one lung to their left and the other to their right.

    Rows above the apices copy the first row that has both lungs, so the map
    runs up into the neck. Its lower part is the heart's shadow, shaped by
    the real masks' cardiac notch; below the bases the abdomen takes over.
    """
    first, second = thorax.per_lung[0] > 0.5, thorax.per_lung[1] > 0.5
    left_of = np.maximum.accumulate(first, axis=1)
    right_of = np.maximum.accumulate(second[:, ::-1], axis=1)[:, ::-1]
    inside = left_of & right_of & ~thorax.mask
    rows = np.nonzero(inside.any(axis=1))[0]
    if rows.size:
        inside[: rows[0]] = inside[rows[0]]
    return ndi.gaussian_filter(inside.astype(np.float32), 0.02 * thorax.size)


def _vessels(thorax: Thorax, rng: np.random.Generator) -> np.ndarray:
    """Branching, tapering vessel trees from each hilum plus fine mottle: the lungs' markings."""
    size = thorax.size
    canvas = Image.new("F", (size, size), 0.0)
    pen = ImageDraw.Draw(canvas)
    for index, (bx0, by0, bx1, by1) in enumerate(thorax.lung_boxes):
        lung_w, lung_h = bx1 - bx0, by1 - by0
        outward = -1.0 if index == 0 else 1.0
        for base_angle in (-75.0, -45.0, -15.0, 15.0, 45.0, 75.0, 100.0):
            # Trees leave the hilum from slightly different points, so the markings do not form a star.
            x = (bx1 - 0.08 * lung_w if index == 0 else bx0 + 0.08 * lung_w) + rng.normal(0.0, 0.03 * lung_w)
            y = by0 + (0.45 + 0.0015 * base_angle) * lung_h + rng.normal(0.0, 0.03 * lung_h)
            stack = [(x, y, math.radians(base_angle + rng.normal(0.0, 10.0)), 0.14 * lung_w, 0.8, 0)]
            while stack:
                x, y, a, ln, weight, depth = stack.pop()
                x2 = x + outward * ln * math.cos(a)
                y2 = y + ln * math.sin(a)
                pen.line([(x, y), (x2, y2)], fill=weight, width=max(round(weight * 0.009 * size), 1))
                if depth < 5:
                    for turn in (-1.0, 1.0):
                        spread = math.radians(rng.uniform(8.0, 30.0))
                        shrink = rng.uniform(0.65, 0.85)
                        stack.append((x2, y2, a + turn * spread, ln * shrink, weight * 0.78, depth + 1))
    markings = ndi.gaussian_filter(np.asarray(canvas), 0.002 * size + 0.4)
    mottle = ndi.gaussian_filter(rng.standard_normal((size, size)).astype(np.float32), 0.004 * size)
    return markings + rng.uniform(0.06, 0.12) * mottle / (mottle.std() + 1e-6)
