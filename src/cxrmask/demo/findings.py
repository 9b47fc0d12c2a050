"""What is drawn on the chest: the five findings, inside the lungs, and the lead marker, outside them.

Each finding is a non-negative opacity layer computed from the
:class:`~cxrmask.demo.anatomy.Thorax`; the renderer multiplies it by the
lung mask, so masking the lungs keeps every finding. The marker is the
demo's shortcut: a bright tag in an upper corner, far enough from the lungs
that a lung mask removes it.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi
from skimage import draw

from cxrmask.demo.anatomy import Placement, Thorax, place_lungs, smoothstep
from cxrmask.errors import CxrmaskError

MARKER_MIN_GAP = 0.09  # marker keeps this fraction of the width away from the lungs
MARKER_MAX_SIZE = 0.065  # marker side, fraction of the width
_PLACEMENT_CHECK_SIZE = 128

_GLYPHS = {
    "L": ("#....", "#....", "#....", "#....", "#....", "#....", "#####"),
    "R": ("####.", "#...#", "#...#", "####.", "#.#..", "#..#.", "#...#"),
}


@dataclass(frozen=True)
class Marker:
    """A radiographer's lead-marker-like tag: top-left corner and side, in fractions of the frame."""

    x: float
    y: float
    size: float
    letter: str


def draw_marker(density: np.ndarray, marker: Marker) -> None:
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


def _pick_centre(thorax: Thorax, rng: np.random.Generator, radius: float) -> tuple[float, float]:
    """Draw a lesion centre (x, y) uniformly among lung pixels at least ``radius`` from the lung edge.

    Lungs too narrow for that (a small lung shape, a large lesion) fall back
    to their deepest pixels, so a lesion is always drawn.
    """
    depth = thorax.depth.ravel()
    candidates = np.flatnonzero(depth >= min(radius, 0.8 * float(depth.max())))
    index = int(candidates[rng.integers(0, candidates.size)])
    return float(index % thorax.size), float(index // thorax.size)


def _draw_mass(thorax: Thorax, rng: np.random.Generator) -> np.ndarray:
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
    return rng.uniform(0.24, 0.4) * smoothstep((1.0 - distance) / 0.4)


def _draw_nodules(thorax: Thorax, rng: np.random.Generator) -> np.ndarray:
    """One to four small, well-defined round opacities."""
    size = thorax.size
    ys, xs = thorax.ys, thorax.xs
    layer = np.zeros((size, size), np.float32)
    for _ in range(int(rng.integers(1, 5))):
        radius = rng.uniform(0.016, 0.03) * size
        cx, cy = _pick_centre(thorax, rng, 1.2 * radius)
        distance = np.hypot(xs - cx, ys - cy)
        edge = max(0.0025 * size, 1.0)
        layer = np.maximum(layer, rng.uniform(0.2, 0.35) * smoothstep((radius - distance) / edge))
    return layer


def _draw_pneumonia(thorax: Thorax, rng: np.random.Generator) -> np.ndarray:
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
    patches = smoothstep((patches / patches.std() + 1.0) / 1.5)
    return rng.uniform(0.26, 0.4) * envelope * patches * (thorax.per_lung[lung] > 0.5)


def _draw_edema(thorax: Thorax, rng: np.random.Generator) -> np.ndarray:
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


def _draw_fibrosis(thorax: Thorax, rng: np.random.Generator) -> np.ndarray:
    """Reticular network of fine lines, strongest at the lung periphery and bases."""
    size = thorax.size
    ys = thorax.ys
    noise = rng.standard_normal((size, size)).astype(np.float32)
    band = ndi.gaussian_filter(noise, 0.01 * size) - ndi.gaussian_filter(noise, 0.02 * size)
    network = np.exp(-((band / (0.3 * band.std())) ** 2))
    y0, y1 = thorax.box[1], thorax.box[3]
    lower = smoothstep((ys - y0) / (y1 - y0) * 1.6 - 0.3)
    peripheral = np.exp(-thorax.depth / (0.05 * size))
    weight = np.clip(0.25 + 0.75 * lower, 0, 1) * np.clip(0.2 + peripheral, 0, 1)
    return rng.uniform(0.16, 0.28) * network * weight


FINDING_DRAWERS = {
    "Mass": _draw_mass,
    "Nodule": _draw_nodules,
    "Pneumonia": _draw_pneumonia,
    "Edema": _draw_edema,
    "Fibrosis": _draw_fibrosis,
}


def _marker_spots(placement: Placement, shape: np.ndarray, size: float) -> list[Marker]:
    """Return marker positions in the upper corners that keep MARKER_MIN_GAP of the width from the lungs."""
    coarse = _PLACEMENT_CHECK_SIZE
    lungs = place_lungs(shape, placement, coarse).max(axis=0) > 0.5
    gap = ndi.distance_transform_edt(~lungs) / coarse
    spots = []
    for x in (0.02, 0.04, 0.06, 0.94 - size, 0.92 - size, 0.9 - size):
        for y in (0.02, 0.035, 0.05):
            rows = slice(int(y * coarse), math.ceil((y + size) * coarse) + 1)
            cols = slice(int(x * coarse), math.ceil((x + size) * coarse) + 1)
            if gap[rows, cols].min() >= MARKER_MIN_GAP + 1.5 / coarse:
                spots.append(Marker(x=x, y=y, size=size, letter="L"))
    return spots


def sample_marker(rng: np.random.Generator, placement: Placement, shape: np.ndarray) -> Marker:
    """Pick one valid marker spot, size and letter at random.

    Placements are only accepted when a marker of the largest size fits
    (:func:`room_for_marker`); smaller markers fit wherever the largest does.
    """
    size = rng.uniform(0.05, MARKER_MAX_SIZE)
    spots = _marker_spots(placement, shape, size)
    if not spots:
        raise CxrmaskError(
            f"no room for a marker beside lungs placed as {placement}; placements must be checked."
        )
    spot = spots[int(rng.integers(0, len(spots)))]
    return dataclasses.replace(spot, letter=str(rng.choice(sorted(_GLYPHS))))


def room_for_marker(placement: Placement, shape: np.ndarray) -> bool:
    """True when a marker of the largest size fits in an upper corner, far enough from these lungs."""
    return bool(_marker_spots(placement, shape, MARKER_MAX_SIZE))
