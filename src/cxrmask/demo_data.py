"""Generate the demo dataset: synthetic chest X-rays in the real sources' on-disk formats.

The demo runs every pipeline step offline, so it needs inputs that exercise
the steps the way real data would: an Airlangga-style folder of 256x256 BMP
images with lung masks (to fine-tune the segmenter), NIH-style 1024x1024 PNGs
with the real ``Data_Entry`` header and patient-wise split lists (to curate,
segment and classify), and the NIH images' true lung masks kept aside (to
score the segmenter).

Three properties make the demo's numbers mean something:

* The images look enough like radiographs that a pretrained medical SAM
  segments the lungs from a box: lung outlines are real annotated lung masks
  (V7 Labs, shipped in torchxrayvision's wheel) placed with mild jitter, and
  the chest is drawn around them (soft tissue, mediastinum, heart, diaphragm,
  ribs, clavicles, vessels, film noise).
* Findings are drawn only inside the lungs, so masking keeps them, and they
  vary in size and contrast, so they are learnable but not trivially so.
* A bright marker outside the lungs is correlated with one label in train/val
  (a shortcut a CNN can learn from the whole image), and optionally
  decorrelated in test, so masking's removal of the shortcut shows up.

Each image is described by a :class:`Case` and drawn by :func:`render_case`
from independent random streams for anatomy, each finding and noise, so the
same case drawn without its findings (or its marker) differs only where those
were drawn: that is what the tests check.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import io
import logging
import math
import os
import zipfile
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage as ndi
from skimage import draw
from tqdm import tqdm

from cxrmask.atomic import atomic_dir
from cxrmask.errors import ConfigError, CxrmaskError, InputError

log = logging.getLogger(__name__)

FINDINGS = ("Mass", "Nodule", "Pneumonia", "Edema", "Fibrosis")
OTHER_FINDINGS = ("Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Pleural_Thickening")
NO_FINDING = "No Finding"
SPLITS = ("train_val", "test")
NIH_HEADER = (
    "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,"
    "OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]"
)
# Detector geometries that make up most of the real table: (width, height, pixel spacing in mm).
NIH_GEOMETRIES = (
    (2500, 2048, "0.168"),
    (2992, 2991, "0.143"),
    (3056, 2544, "0.139"),
    (2500, 2048, "0.171"),
    (2048, 2500, "0.168"),
    (2021, 2021, "0.194311"),
    (2544, 3056, "0.139"),
)
NIH_GEOMETRY_WEIGHTS = (30, 22, 15, 7, 6, 4, 2)

LUNG_SHAPES_PACKAGE = "torchxrayvision"
LUNG_SHAPES_ZIP = "data/semantic_masks_v7labs_lungs.zip"

# Share of NIH-style images by label group; the rest carry one or more of FINDINGS.
NO_FINDING_SHARE = 0.35
OTHER_ONLY_SHARE = 0.05
EXTRA_FINDING_RATE = 0.15  # chance that an abnormal image also shows each further finding
OTHER_COLABEL_RATE = 0.1  # chance that an abnormal image also lists one finding outside FINDINGS

WORK_SIZE = 512  # chest anatomy is drawn at most at this size, then upsampled
MARKER_MIN_GAP = 0.09  # marker keeps this fraction of the width away from the lungs
MARKER_MAX_SIZE = 0.065  # marker side, fraction of the width
SEG_MARKER_RATE = 0.3  # share of Airlangga-style images with a marker
_PLACEMENT_CHECK_SIZE = 128
_LUT_LEVELS = 4096

# Anatomy, findings and noise each draw from their own stream, keyed by these numbers.
_STREAM_ANATOMY, _STREAM_NOISE, _STREAM_FINDING = 0, 1, 2

_GLYPHS = {
    "L": ("#....", "#....", "#....", "#....", "#....", "#....", "#####"),
    "R": ("####.", "#...#", "#...#", "####.", "#.#..", "#..#.", "#...#"),
}


@dataclass(frozen=True)
class Placement:
    """Where a real lung shape lands in the frame, in fractions of the frame side."""

    shape_index: int
    centre_x: float
    top: float
    width: float
    aspect: float
    angle_deg: float


@dataclass(frozen=True)
class Marker:
    """A radiographer's lead-marker-like tag: top-left corner and side, in fractions of the frame."""

    x: float
    y: float
    size: float
    letter: str


@dataclass(frozen=True)
class Case:
    """Everything needed to draw one image; rendering is a pure function of it."""

    seed: int
    placement: Placement
    findings: tuple[str, ...] = ()
    marker: Marker | None = None
    heart_scale: float = 1.0


@dataclass(frozen=True)
class Rendered:
    """A drawn image (8-bit grey) and its true lung mask, both at the requested size."""

    image: np.ndarray
    lungs: np.ndarray


@dataclass(frozen=True)
class NihRecord:
    """One NIH-style image: its table row and how to draw it."""

    name: str
    patient_id: int
    follow_up: int
    age: int
    sex: str
    view: str
    geometry: tuple[int, int, str]
    labels: tuple[str, ...]
    split: str
    case: Case


# ----------------------------------------------------------------------------------------------------------
# Real lung shapes


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
        raise InputError(
            f"{LUNG_SHAPES_PACKAGE}/{LUNG_SHAPES_ZIP}: no usable two-lung mask found in the archive."
        )
    return tuple(shapes)


def _lung_shapes_archive() -> bytes:
    """Read the lung-mask archive from torchxrayvision's installed files.

    The package is located with ``importlib.util.find_spec``, which does not
    import it: importing torchxrayvision imports torch (~10 s), and only its
    data file is needed here.
    """
    where = f"{LUNG_SHAPES_PACKAGE}/{LUNG_SHAPES_ZIP}"
    spec = importlib.util.find_spec(LUNG_SHAPES_PACKAGE)
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in folders:
        path = Path(folder) / LUNG_SHAPES_ZIP
        if path.is_file():
            return path.read_bytes()
    raise InputError(
        f"{where}: not found, so the demo generator has no real lung shapes to draw from. "
        "Install the torchxrayvision wheel (it ships this archive) into this environment."
    )


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


def _place_lungs(shape: np.ndarray, placement: Placement, size: int) -> np.ndarray:
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


# ----------------------------------------------------------------------------------------------------------
# Drawing primitives


def _smoothstep(values: np.ndarray) -> np.ndarray:
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


def _resize(array: np.ndarray, size: int) -> np.ndarray:
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
class _Thorax:
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
    def from_masks(cls, per_lung: np.ndarray) -> _Thorax:
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


# ----------------------------------------------------------------------------------------------------------
# Anatomy


def _draw_anatomy(thorax: _Thorax, rng: np.random.Generator, heart_scale: float) -> np.ndarray:
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
    inside_body = _smoothstep(across / 0.15)
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
    heart = _smoothstep((1.0 - ((xs - heart_cx) / heart_a) ** 2 - ((ys - heart_cy) / heart_b) ** 2) / 0.6)
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
    air = thorax.soft * (0.45 + 0.55 * _smoothstep(thorax.depth / (0.07 * size)))
    density -= rng.uniform(0.3, 0.4) * air
    density += rng.uniform(0.07, 0.12) * _vessels(thorax, rng) * thorax.soft

    # Slow variation of exposure across the film.
    density += rng.uniform(0.02, 0.05) * _smooth_field(rng, size, 5)
    return density


def _between_lungs(thorax: _Thorax) -> np.ndarray:
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


def _vessels(thorax: _Thorax, rng: np.random.Generator) -> np.ndarray:
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


def _draw_marker(density: np.ndarray, marker: Marker) -> None:
    """Stamp a bright tag with a dark letter onto ``density`` (in place)."""
    size = density.shape[0]
    x0, y0 = round(marker.x * size), round(marker.y * size)
    side = max(round(marker.size * size), 9)
    glyph = np.array([[c == "#" for c in row] for row in _GLYPHS[marker.letter]], dtype=bool)
    density[y0 : y0 + side, x0 : x0 + side] = 1.1
    cell = max(side // 9, 1)
    letter = np.kron(glyph, np.ones((cell, cell), dtype=bool))
    top = y0 + (side - letter.shape[0]) // 2
    left = x0 + (side - letter.shape[1]) // 2
    region = density[top : top + letter.shape[0], left : left + letter.shape[1]]
    region[letter] = 0.45


# ----------------------------------------------------------------------------------------------------------
# Findings (each drawn as a non-negative opacity layer inside the lungs)


def _pick_centre(thorax: _Thorax, rng: np.random.Generator, radius: float) -> tuple[float, float]:
    """Draw a lesion centre (x, y) uniformly among lung pixels at least ``radius`` from the lung edge.

    Lungs too narrow for that (a small lung shape, a large lesion) fall back
    to their deepest pixels, so a lesion is always drawn.
    """
    depth = thorax.depth.ravel()
    candidates = np.flatnonzero(depth >= min(radius, 0.8 * float(depth.max())))
    index = int(candidates[rng.integers(0, candidates.size)])
    return float(index % thorax.size), float(index // thorax.size)


def _draw_mass(thorax: _Thorax, rng: np.random.Generator) -> np.ndarray:
    """One large round-ish opacity with a soft, slightly lobulated edge."""
    width = thorax.box[2] - thorax.box[0]
    radius = rng.uniform(0.12, 0.19) * width
    cx, cy = _pick_centre(thorax, rng, 0.7 * radius)
    ys, xs = thorax.ys, thorax.xs
    theta = np.arctan2(ys - cy, xs - cx)
    lobes = 1.0 + sum(
        rng.uniform(0.0, 0.08) * np.cos(k * theta + rng.uniform(0, 2 * np.pi)) for k in (2, 3, 5)
    )
    distance = np.hypot(xs - cx, ys - cy) / (radius * lobes)
    return rng.uniform(0.24, 0.4) * _smoothstep((1.0 - distance) / 0.4)


def _draw_nodules(thorax: _Thorax, rng: np.random.Generator) -> np.ndarray:
    """One to four small, well-defined round opacities."""
    size = thorax.size
    ys, xs = thorax.ys, thorax.xs
    layer = np.zeros((size, size), np.float32)
    for _ in range(int(rng.integers(1, 5))):
        radius = rng.uniform(0.016, 0.03) * size
        cx, cy = _pick_centre(thorax, rng, 1.2 * radius)
        distance = np.hypot(xs - cx, ys - cy)
        edge = max(0.0025 * size, 1.0)
        layer = np.maximum(layer, rng.uniform(0.2, 0.35) * _smoothstep((radius - distance) / edge))
    return layer


def _draw_pneumonia(thorax: _Thorax, rng: np.random.Generator) -> np.ndarray:
    """Patchy, irregular consolidation in the lower zone of one lung."""
    size = thorax.size
    lung = int(rng.integers(0, 2))
    bx0, by0, bx1, by1 = thorax.lung_boxes[lung]
    cx = rng.uniform(bx0 + 0.3 * (bx1 - bx0), bx1 - 0.3 * (bx1 - bx0))
    cy = rng.uniform(by0 + 0.55 * (by1 - by0), by0 + 0.8 * (by1 - by0))
    ys, xs = thorax.ys, thorax.xs
    rx, ry = rng.uniform(0.35, 0.5) * (bx1 - bx0), rng.uniform(0.15, 0.25) * (by1 - by0)
    envelope = np.exp(-(((xs - cx) / rx) ** 2 + ((ys - cy) / ry) ** 2) * 1.5)
    patches = ndi.gaussian_filter(rng.standard_normal((size, size)).astype(np.float32), 0.012 * size)
    patches = _smoothstep((patches / patches.std() + 1.0) / 1.5)
    return rng.uniform(0.26, 0.4) * envelope * patches * (thorax.per_lung[lung] > 0.5)


def _draw_edema(thorax: _Thorax, rng: np.random.Generator) -> np.ndarray:
    """Bilateral perihilar haze ("bat wing") and faint horizontal septal lines at the lung bases."""
    size = thorax.size
    ys, xs = thorax.ys, thorax.xs
    layer = np.zeros((size, size), np.float32)
    strength = rng.uniform(0.18, 0.3)
    lines = np.zeros((size, size), np.float32)
    for index, (bx0, by0, bx1, by1) in enumerate(thorax.lung_boxes):
        lung_w, lung_h = bx1 - bx0, by1 - by0
        hx = bx1 - 0.15 * lung_w if index == 0 else bx0 + 0.15 * lung_w
        hy = by0 + rng.uniform(0.42, 0.55) * lung_h
        sx, sy = rng.uniform(0.35, 0.5) * lung_w, rng.uniform(0.22, 0.3) * lung_h
        layer += np.exp(-(((xs - hx) / sx) ** 2 + ((ys - hy) / sy) ** 2))
        lateral_x = bx0 if index == 0 else bx1
        inward = 1.0 if index == 0 else -1.0
        for _ in range(int(rng.integers(5, 10))):
            y = round(by0 + rng.uniform(0.6, 0.9) * lung_h)
            x_start = lateral_x + inward * rng.uniform(0.0, 0.05) * lung_w
            x_end = x_start + inward * rng.uniform(0.06, 0.12) * lung_w
            rr, cc, val = draw.line_aa(y, round(x_start), y, round(x_end))
            keep = (rr >= 0) & (rr < size) & (cc >= 0) & (cc < size)
            lines[rr[keep], cc[keep]] = np.maximum(lines[rr[keep], cc[keep]], val[keep])
    lines = ndi.gaussian_filter(lines, 0.0015 * size + 0.3)
    lines /= max(float(lines.max()), 1e-6)
    return strength * (np.clip(layer, 0.0, 1.0) + rng.uniform(0.5, 0.8) * lines)


def _draw_fibrosis(thorax: _Thorax, rng: np.random.Generator) -> np.ndarray:
    """Reticular network of fine lines, strongest at the lung periphery and bases."""
    size = thorax.size
    ys = thorax.ys
    noise = rng.standard_normal((size, size)).astype(np.float32)
    band = ndi.gaussian_filter(noise, 0.01 * size) - ndi.gaussian_filter(noise, 0.02 * size)
    network = np.exp(-((band / (0.3 * band.std())) ** 2))
    y0, y1 = thorax.box[1], thorax.box[3]
    lower = _smoothstep((ys - y0) / (y1 - y0) * 1.6 - 0.3)
    peripheral = np.exp(-thorax.depth / (0.05 * size))
    weight = np.clip(0.25 + 0.75 * lower, 0, 1) * np.clip(0.2 + peripheral, 0, 1)
    return rng.uniform(0.16, 0.28) * network * weight


_FINDING_DRAWERS = {
    "Mass": _draw_mass,
    "Nodule": _draw_nodules,
    "Pneumonia": _draw_pneumonia,
    "Edema": _draw_edema,
    "Fibrosis": _draw_fibrosis,
}


def _draw_findings(thorax: _Thorax, case: Case) -> np.ndarray:
    """Sum the case's finding layers, each from its own stream so one finding never shifts another."""
    layer = np.zeros((thorax.size, thorax.size), np.float32)
    for name in case.findings:
        rng = np.random.default_rng([case.seed, _STREAM_FINDING, FINDINGS.index(name)])
        layer += _FINDING_DRAWERS[name](thorax, rng)
    return layer


# ----------------------------------------------------------------------------------------------------------
# Rendering


def render_case(case: Case, size: int, shapes: tuple[np.ndarray, ...] | None = None) -> Rendered:
    """Draw ``case`` as an 8-bit grey (size, size) image with its true lung mask.

    Anatomy is drawn at ``min(size, 512)`` and upsampled (it is smooth); film
    noise is added at full size. Findings are multiplied by the full-size
    lung mask after upsampling, so they are exactly zero outside the lungs;
    all later steps are per-pixel, so a case drawn with and without its
    findings differs only inside the lungs.
    """
    for name in case.findings:
        if name not in FINDINGS:
            raise ConfigError(f"finding {name!r}: not one of {', '.join(FINDINGS)}.")
    shapes = shapes if shapes is not None else load_lung_shapes()
    work = min(size, WORK_SIZE)
    per_lung = _place_lungs(shapes[case.placement.shape_index], case.placement, work)
    thorax = _Thorax.from_masks(per_lung)
    anatomy_rng = np.random.default_rng([case.seed, _STREAM_ANATOMY])
    density = _draw_anatomy(thorax, anatomy_rng, case.heart_scale)
    if case.marker is not None:
        _draw_marker(density, case.marker)
    density = ndi.gaussian_filter(density, anatomy_rng.uniform(0.4, 0.9) * work / WORK_SIZE)
    findings = _draw_findings(thorax, case) * _smoothstep(thorax.depth / (0.012 * work))

    lungs = _resize(thorax.soft, size) > 0.5
    density = _resize(density, size)
    noise_rng = np.random.default_rng([case.seed, _STREAM_NOISE])
    density += noise_rng.uniform(0.006, 0.016) * noise_rng.standard_normal((size, size), dtype=np.float32)
    density += _resize(findings, size) * lungs

    low, high = anatomy_rng.uniform(-0.02, 0.08), anatomy_rng.uniform(0.92, 1.08)
    gamma = anatomy_rng.uniform(0.8, 1.25)
    # Window and gamma through a lookup table: per pixel like the formula, several times faster at 1024.
    levels = np.round((np.linspace(0.0, 1.0, _LUT_LEVELS) ** gamma) * 255.0).astype(np.uint8)
    index = np.clip((density - low) * ((_LUT_LEVELS - 1) / (high - low)) + 0.5, 0, _LUT_LEVELS - 1)
    return Rendered(image=levels[index.astype(np.intp)], lungs=lungs)


# ----------------------------------------------------------------------------------------------------------
# Sampling cases


def _sample_placement(rng: np.random.Generator, n_shapes: int) -> Placement:
    """Draw a lung placement centred roughly as in a PA film: lungs span ~60-70% of the width."""
    return Placement(
        shape_index=int(rng.integers(0, n_shapes)),
        centre_x=0.5 + rng.normal(0.0, 0.012),
        top=rng.uniform(0.1, 0.15),
        width=rng.uniform(0.58, 0.7),
        aspect=1.0 + rng.normal(0.0, 0.04),
        angle_deg=float(np.clip(rng.normal(0.0, 1.5), -4.0, 4.0)),
    )


def _jitter_placement(base: Placement, rng: np.random.Generator) -> Placement:
    """The same patient on another day: small changes of position, size and tilt."""
    return dataclasses.replace(
        base,
        centre_x=base.centre_x + rng.normal(0.0, 0.008),
        top=base.top + rng.normal(0.0, 0.008),
        width=base.width * (1.0 + rng.normal(0.0, 0.02)),
        angle_deg=base.angle_deg + rng.normal(0.0, 1.0),
    )


def _fit_placement(placement: Placement, shape: np.ndarray) -> Placement:
    """Shrink a placement whose lungs would reach below 88% of the frame (tall lung shapes)."""
    _, crop_h, crop_w = shape.shape
    height = placement.width * placement.aspect * crop_h / crop_w
    limit = 0.88 - placement.top
    if height <= limit:
        return placement
    return dataclasses.replace(placement, width=placement.width * limit / height)


def _marker_spots(placement: Placement, shape: np.ndarray, size: float) -> list[Marker]:
    """Return marker positions in the upper corners that keep MARKER_MIN_GAP of the width from the lungs."""
    coarse = _PLACEMENT_CHECK_SIZE
    lungs = _place_lungs(shape, placement, coarse).max(axis=0) > 0.5
    gap = ndi.distance_transform_edt(~lungs) / coarse
    spots = []
    for x in (0.02, 0.04, 0.06, 0.94 - size, 0.92 - size, 0.9 - size):
        for y in (0.02, 0.035, 0.05):
            rows = slice(int(y * coarse), math.ceil((y + size) * coarse) + 1)
            cols = slice(int(x * coarse), math.ceil((x + size) * coarse) + 1)
            if gap[rows, cols].min() >= MARKER_MIN_GAP + 1.5 / coarse:
                spots.append(Marker(x=x, y=y, size=size, letter="L"))
    return spots


def _sample_marker(rng: np.random.Generator, placement: Placement, shape: np.ndarray) -> Marker:
    """Pick one valid marker spot, size and letter at random.

    Placements are only accepted when a marker of the largest size fits
    (:func:`_room_for_marker`); smaller markers fit wherever the largest does.
    """
    size = rng.uniform(0.05, MARKER_MAX_SIZE)
    spots = _marker_spots(placement, shape, size)
    if not spots:
        raise CxrmaskError(
            f"no room for a marker beside lungs placed as {placement}; placements must be checked."
        )
    spot = spots[int(rng.integers(0, len(spots)))]
    return dataclasses.replace(spot, letter=str(rng.choice(sorted(_GLYPHS))))


def _room_for_marker(placement: Placement, shape: np.ndarray) -> bool:
    """True when a marker of the largest size fits in an upper corner, far enough from these lungs."""
    return bool(_marker_spots(placement, shape, MARKER_MAX_SIZE))


# ----------------------------------------------------------------------------------------------------------
# The dataset


def _check_parameters(**values: Any) -> None:
    """Reject parameter values that would make an empty or meaningless demo set."""
    for key in ("n_seg_images", "n_patients", "max_images_per_patient"):
        if int(values[key]) < 1:
            raise ConfigError(f"demo data: {key} must be at least 1, got {values[key]}.")
    for key in ("nih_size", "seg_size"):
        if int(values[key]) < 64:
            raise ConfigError(f"demo data: {key} must be at least 64 pixels, got {values[key]}.")
    for key in ("shortcut_rate_train", "shortcut_rate_other", "shortcut_rate_test"):
        rate = values[key]
        if rate is not None and not 0.0 <= float(rate) <= 1.0:
            raise ConfigError(f"demo data: {key} must lie in [0, 1], got {rate}.")
    if not 0.0 < float(values["test_fraction"]) < 1.0:
        raise ConfigError(
            f"demo data: test_fraction must lie strictly between 0 and 1, got {values['test_fraction']}."
        )
    if values["shortcut_label"] not in FINDINGS:
        raise ConfigError(
            f"demo data: shortcut_label {values['shortcut_label']!r} must be one of {', '.join(FINDINGS)}."
        )


def _assign_labels(rng: np.random.Generator, count: int) -> list[tuple[str, ...]]:
    """Label ``count`` images: ~35% No Finding, ~5% other findings only, the rest one or more of FINDINGS.

    Primary findings go round-robin before shuffling, so every finding is
    common enough to learn even in a small set.
    """
    n_normal = round(NO_FINDING_SHARE * count)
    n_other = round(OTHER_ONLY_SHARE * count)
    labels: list[tuple[str, ...]] = [(NO_FINDING,)] * n_normal
    labels += [(str(rng.choice(OTHER_FINDINGS)),) for _ in range(n_other)]
    for k in range(count - n_normal - n_other):
        primary = FINDINGS[k % len(FINDINGS)]
        chosen = {primary} | {f for f in FINDINGS if f != primary and rng.random() < EXTRA_FINDING_RATE}
        if rng.random() < OTHER_COLABEL_RATE:
            chosen.add(str(rng.choice(OTHER_FINDINGS)))
        labels.append(tuple(sorted(chosen)))
    order = rng.permutation(count)
    return [labels[i] for i in order]


def _sample_chest(rng: np.random.Generator, shapes: tuple[np.ndarray, ...]) -> Placement:
    """Draw a patient's lung placement, redrawn until a marker fits in an upper corner."""
    while True:
        placement = _sample_placement(rng, len(shapes))
        placement = _fit_placement(placement, shapes[placement.shape_index])
        if _room_for_marker(placement, shapes[placement.shape_index]):
            return placement


def _follow_up_placement(base: Placement, rng: np.random.Generator, shape: np.ndarray) -> Placement:
    """Jitter a patient's placement for one image; keep the patient's own if that leaves no marker room."""
    placement = _fit_placement(_jitter_placement(base, rng), shape)
    return placement if _room_for_marker(placement, shape) else base


def build_nih_records(
    rng: np.random.Generator,
    shapes: tuple[np.ndarray, ...],
    *,
    n_patients: int,
    max_images_per_patient: int,
    shortcut_label: str,
    shortcut_rate_train: float,
    shortcut_rate_other: float,
    shortcut_rate_test: float | None,
    test_fraction: float,
) -> list[NihRecord]:
    """Sample patients, follow-ups, table fields, labels, split and marker for every NIH-style image."""
    n_test = min(max(round(test_fraction * n_patients), 1), n_patients - 1) if n_patients > 1 else 0
    test_patients = {int(p) + 1 for p in rng.permutation(n_patients)[:n_test]}
    patients = []
    for patient_id in range(1, n_patients + 1):
        n_images = int(rng.integers(1, max_images_per_patient + 1))
        sex = "M" if rng.random() < 0.56 else "F"
        age = int(np.clip(rng.normal(47.0, 16.0), 18, 90))
        placement = _sample_chest(rng, shapes)
        patients.append((patient_id, n_images, sex, age, placement))
    total = sum(p[1] for p in patients)
    labels = iter(_assign_labels(rng, total))

    records = []
    for patient_id, n_images, sex, age, placement in patients:
        for follow_up in range(n_images):
            image_labels = next(labels)
            geometry = NIH_GEOMETRIES[int(rng.choice(len(NIH_GEOMETRIES), p=_geometry_weights()))]
            view = "PA" if rng.random() < 0.6 else "AP"
            heart = (1.25 if "Cardiomegaly" in image_labels else 1.0) * rng.uniform(0.9, 1.1)
            case = Case(
                seed=int(rng.integers(0, 2**31 - 1)),
                placement=_follow_up_placement(placement, rng, shapes[placement.shape_index]),
                findings=tuple(label for label in image_labels if label in FINDINGS),
                heart_scale=heart,
            )
            records.append(
                NihRecord(
                    name=f"{patient_id:08d}_{follow_up:03d}.png",
                    patient_id=patient_id,
                    follow_up=follow_up,
                    age=min(age + follow_up // 2, 95),
                    sex=sex,
                    view=view,
                    geometry=geometry,
                    labels=image_labels,
                    split="test" if patient_id in test_patients else "train_val",
                    case=case,
                )
            )

    marked = _choose_marked(
        rng, records, shortcut_label, shortcut_rate_train, shortcut_rate_other, shortcut_rate_test
    )
    for index in sorted(marked):
        case = records[index].case
        marker = _sample_marker(rng, case.placement, shapes[case.placement.shape_index])
        records[index] = dataclasses.replace(records[index], case=dataclasses.replace(case, marker=marker))
    return records


@functools.cache
def _geometry_weights() -> np.ndarray:
    """Normalised frequencies of NIH_GEOMETRIES."""
    weights = np.asarray(NIH_GEOMETRY_WEIGHTS, dtype=np.float64)
    return weights / weights.sum()


def _choose_marked(
    rng: np.random.Generator,
    records: list[NihRecord],
    shortcut_label: str,
    rate_train: float,
    rate_other: float,
    rate_test: float | None,
) -> set[int]:
    """Return indices of images that get a marker: exact shares per split and label group.

    Exact counts (not coin flips) keep the shortcut's strength what the
    config says even in a set of a few dozen images.
    """
    groups: dict[tuple[str, bool], list[int]] = {}
    for index, record in enumerate(records):
        groups.setdefault((record.split, shortcut_label in record.labels), []).append(index)
    chosen: set[int] = set()
    for (split, positive), members in sorted(groups.items()):
        if split == "test" and rate_test is not None:
            rate = rate_test
        else:
            rate = rate_train if positive else rate_other
        count = round(rate * len(members))
        chosen.update(int(i) for i in rng.permutation(members)[:count])
    return chosen


def build_seg_cases(
    rng: np.random.Generator, shapes: tuple[np.ndarray, ...], n_images: int
) -> list[tuple[str, Case]]:
    """Sample the Airlangga-style set: half Normal, half Abnormal (one or two findings).

    Some images carry a marker, as real films do, but unrelated to the
    group: this set teaches lung outlines, not labels.
    """
    cases = []
    for index in range(n_images):
        group = "Normal" if index % 2 == 0 else "Abnormal"
        placement = _sample_chest(rng, shapes)
        findings: tuple[str, ...] = ()
        if group == "Abnormal":
            count = int(rng.integers(1, 3))
            findings = tuple(sorted(str(f) for f in rng.choice(FINDINGS, size=count, replace=False)))
        has_marker = rng.random() < SEG_MARKER_RATE
        marker = _sample_marker(rng, placement, shapes[placement.shape_index]) if has_marker else None
        cases.append(
            (
                group,
                Case(
                    seed=int(rng.integers(0, 2**31 - 1)),
                    placement=placement,
                    findings=findings,
                    marker=marker,
                ),
            )
        )
    return cases


def _save(image: np.ndarray, path: Path, fmt: str) -> None:
    """Save an 8-bit grey array (PIL mode L); PNG at a moderate compression level to keep generation fast."""
    path.parent.mkdir(parents=True, exist_ok=True)
    options = {"compress_level": 3} if fmt == "PNG" else {}
    Image.fromarray(image, mode="L").save(path, format=fmt, **options)


@dataclass(frozen=True)
class _DrawJob:
    """One image to draw and where its file goes; its true lung mask goes to the matching mask path."""

    case: Case
    size: int
    image_path: Path
    fmt: str

    @property
    def mask_path(self) -> Path:
        """Airlangga masks sit in ``masks/`` beside ``images/``; NIH masks in ``nih_lung_masks/``."""
        if self.fmt == "BMP":
            return self.image_path.parent.parent / "masks" / self.image_path.name
        return self.image_path.parent.parent.parent / "nih_lung_masks" / self.image_path.name


def _draw_job(job: _DrawJob) -> None:
    """Draw one image and write it and its lung mask (runs in a worker process)."""
    drawn = render_case(job.case, job.size)
    _save(drawn.image, job.image_path, job.fmt)
    _save(drawn.lungs.astype(np.uint8) * 255, job.mask_path, job.fmt)


def _draw_all(jobs: list[_DrawJob], workers: int) -> None:
    """Draw every job, in ``workers`` processes when more than one.

    Each image depends only on its own case, so the files are the same
    whatever the number of workers or the order they finish in.
    """
    progress = tqdm(total=len(jobs), desc="demo images", unit="img")
    if workers <= 1:
        for job in jobs:
            _draw_job(job)
            progress.update()
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for _ in pool.map(_draw_job, jobs, chunksize=4):
                progress.update()
    progress.close()


def _table(records: list[NihRecord]) -> str:
    """The Data_Entry CSV text, rows in image-name order like the real table."""
    lines = [NIH_HEADER]
    for r in sorted(records, key=lambda rec: rec.name):
        width, height, spacing = r.geometry
        lines.append(
            f"{r.name},{'|'.join(r.labels)},{r.follow_up},{r.patient_id},{r.age},{r.sex},{r.view},"
            f"{width},{height},{spacing},{spacing}"
        )
    return "\n".join(lines) + "\n"


def make_demo_data(
    out_dir: Path,
    *,
    seed: int = 0,
    n_seg_images: int = 40,
    n_patients: int = 120,
    max_images_per_patient: int = 3,
    nih_size: int = 1024,
    seg_size: int = 256,
    shortcut_label: str = "Pneumonia",
    shortcut_rate_train: float = 0.85,
    shortcut_rate_other: float = 0.1,
    shortcut_rate_test: float | None = None,
    test_fraction: float = 0.3,
    workers: int | None = None,
) -> dict[str, Any]:
    """Write the whole demo dataset under ``out_dir`` (replaced as a whole, atomically); return a summary.

    Layout: ``airlangga/{Normal,Abnormal}/{images,masks}/{id}.bmp``,
    ``nih/images/*.png``, ``nih/Data_Entry_2017_v2020.csv``,
    ``nih/train_val_list.txt``, ``nih/test_list.txt`` and
    ``nih_lung_masks/*.png``. Everything follows from ``seed``: two runs
    write byte-identical files, whatever ``workers`` (processes drawing
    images; default: one per CPU core).
    """
    _check_parameters(
        n_seg_images=n_seg_images,
        n_patients=n_patients,
        max_images_per_patient=max_images_per_patient,
        nih_size=nih_size,
        seg_size=seg_size,
        shortcut_label=shortcut_label,
        shortcut_rate_train=shortcut_rate_train,
        shortcut_rate_other=shortcut_rate_other,
        shortcut_rate_test=shortcut_rate_test,
        test_fraction=test_fraction,
    )
    workers = workers if workers is not None else os.cpu_count() or 1
    shapes = load_lung_shapes()
    rng = np.random.default_rng(seed)
    seg_cases = build_seg_cases(rng, shapes, n_seg_images)
    records = build_nih_records(
        rng,
        shapes,
        n_patients=n_patients,
        max_images_per_patient=max_images_per_patient,
        shortcut_label=shortcut_label,
        shortcut_rate_train=shortcut_rate_train,
        shortcut_rate_other=shortcut_rate_other,
        shortcut_rate_test=shortcut_rate_test,
        test_fraction=test_fraction,
    )
    log.info(
        "demo data: %d Airlangga-style and %d NIH-style images from %d lung shapes (seed %d)",
        len(seg_cases),
        len(records),
        len(shapes),
        seed,
    )
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        jobs = [
            _DrawJob(case, seg_size, tmp / "airlangga" / group / "images" / f"{index + 1:04d}.bmp", "BMP")
            for index, (group, case) in enumerate(seg_cases)
        ]
        jobs += [_DrawJob(r.case, nih_size, tmp / "nih" / "images" / r.name, "PNG") for r in records]
        _draw_all(jobs, workers)
        (tmp / "nih" / "Data_Entry_2017_v2020.csv").write_text(_table(records))
        for split, filename in (("train_val", "train_val_list.txt"), ("test", "test_list.txt")):
            names = sorted(r.name for r in records if r.split == split)
            (tmp / "nih" / filename).write_text("".join(f"{name}\n" for name in names))
    summary = _summary(seed, seg_cases, records)
    log.info("demo data written to %s: %s", out_dir, summary["files"])
    return summary


def _summary(seed: int, seg_cases: list[tuple[str, Case]], records: list[NihRecord]) -> dict[str, Any]:
    """Counts per label and split, marker counts and file counts, for logs and the run record."""
    labels: dict[str, Counter[str]] = {split: Counter() for split in SPLITS}
    images: Counter[str] = Counter()
    patients: dict[str, set[int]] = {split: set() for split in SPLITS}
    markers: Counter[str] = Counter()
    for r in records:
        images[r.split] += 1
        patients[r.split].add(r.patient_id)
        labels[r.split].update(r.labels)
        if r.case.marker is not None:
            markers[r.split] += 1
    groups = Counter(group for group, _ in seg_cases)
    return {
        "seed": seed,
        "airlangga": {"Normal": groups["Normal"], "Abnormal": groups["Abnormal"]},
        "nih": {
            "images": {split: images[split] for split in SPLITS},
            "patients": {split: len(ids) for split, ids in patients.items()},
            "labels": {split: dict(sorted(counter.items())) for split, counter in labels.items()},
            "markers": {split: markers[split] for split in SPLITS},
            "marker_images": sorted(r.name for r in records if r.case.marker is not None),
        },
        "files": {
            "airlangga_images": len(seg_cases),
            "airlangga_masks": len(seg_cases),
            "nih_images": len(records),
            "nih_lung_masks": len(records),
        },
    }
