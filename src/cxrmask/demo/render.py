"""Drawing one image: a :class:`Case` in, an 8-bit radiograph and its true lung mask out.

Anatomy, findings and noise draw from independent random streams keyed by
the case's seed, so the same case drawn without its findings (or its
marker) differs only where those were drawn.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from cxrmask.demo.anatomy import (
    Placement,
    Thorax,
    draw_anatomy,
    load_lung_shapes,
    place_lungs,
    resize,
    smoothstep,
)
from cxrmask.demo.findings import FINDING_DRAWERS, Marker, draw_marker
from cxrmask.errors import ConfigError
from cxrmask.vocabulary import STUDY_LABELS

WORK_SIZE = 512  # chest anatomy is drawn at most at this size, then upsampled
_LUT_LEVELS = 4096

# Anatomy, findings and noise each draw from their own stream, keyed by these numbers.
_STREAM_ANATOMY, _STREAM_NOISE, _STREAM_FINDING = 0, 1, 2


@dataclass(frozen=True)
class Look:
    """A site's film: the ranges its window, gamma, blur and noise are drawn from, per image."""

    low: tuple[float, float]
    high: tuple[float, float]
    gamma: tuple[float, float]
    blur: tuple[float, float]
    noise: tuple[float, float]


LOOKS = {
    "nih": Look(
        low=(-0.02, 0.08), high=(0.92, 1.08), gamma=(0.8, 1.25), blur=(0.4, 0.9), noise=(0.006, 0.016)
    ),
    # another hospital: a wider window, harder gamma, softer detector and more quantum noise
    "padchest": Look(
        low=(-0.12, -0.04), high=(1.1, 1.22), gamma=(1.3, 1.7), blur=(1.0, 1.6), noise=(0.02, 0.035)
    ),
}
"""The demo's two sites: NIH-style images and those of its PadChest-style external collection."""


@dataclass(frozen=True)
class Case:
    """Everything needed to draw one image; rendering is a pure function of it."""

    seed: int
    placement: Placement
    findings: tuple[str, ...] = ()
    marker: Marker | None = None
    heart_scale: float = 1.0
    look: str = "nih"


@dataclass(frozen=True)
class Rendered:
    """A drawn image (8-bit grey) and its true lung mask, both at the requested size."""

    image: np.ndarray
    lungs: np.ndarray


def _draw_findings(thorax: Thorax, case: Case) -> np.ndarray:
    """Sum the case's finding layers, each from its own stream so one finding never shifts another."""
    layer = np.zeros((thorax.size, thorax.size), np.float32)
    for name in case.findings:
        rng = np.random.default_rng([case.seed, _STREAM_FINDING, STUDY_LABELS.index(name)])
        layer += FINDING_DRAWERS[name](thorax, rng)
    return layer


def render_case(case: Case, size: int, shapes: tuple[np.ndarray, ...] | None = None) -> Rendered:
    """Draw ``case`` as an 8-bit grey (size, size) image with its true lung mask.

    Anatomy is drawn at ``min(size, 512)`` and upsampled (it is smooth); film
    noise is added at full size. Findings are multiplied by the full-size
    lung mask after upsampling, so they are exactly zero outside the lungs;
    all later steps are per-pixel, so a case drawn with and without its
    findings differs only inside the lungs.
    """
    for name in case.findings:
        if name not in STUDY_LABELS:
            raise ConfigError(f"finding {name!r}: not one of {', '.join(STUDY_LABELS)}.")
    if case.look not in LOOKS:
        raise ConfigError(f"look {case.look!r}: not one of {', '.join(LOOKS)}.")
    shapes = shapes if shapes is not None else load_lung_shapes()
    work = min(size, WORK_SIZE)
    per_lung = place_lungs(shapes[case.placement.shape_index], case.placement, work)
    thorax = Thorax.from_masks(per_lung)
    anatomy_rng = np.random.default_rng([case.seed, _STREAM_ANATOMY])
    density = draw_anatomy(thorax, anatomy_rng, case.heart_scale)
    if case.marker is not None:
        draw_marker(density, case.marker)
    look = LOOKS[case.look]
    density = ndi.gaussian_filter(density, anatomy_rng.uniform(*look.blur) * work / WORK_SIZE)
    findings = _draw_findings(thorax, case) * smoothstep(thorax.depth / (0.012 * work))

    lungs = resize(thorax.soft, size) > 0.5
    density = resize(density, size)
    noise_rng = np.random.default_rng([case.seed, _STREAM_NOISE])
    density += noise_rng.uniform(*look.noise) * noise_rng.standard_normal((size, size), dtype=np.float32)
    density += resize(findings, size) * lungs

    low, high = anatomy_rng.uniform(*look.low), anatomy_rng.uniform(*look.high)
    gamma = anatomy_rng.uniform(*look.gamma)
    # Window and gamma through a lookup table: per pixel like the formula, several times faster at 1024.
    levels = np.round((np.linspace(0.0, 1.0, _LUT_LEVELS) ** gamma) * 255.0).astype(np.uint8)
    index = np.clip((density - low) * ((_LUT_LEVELS - 1) / (high - low)) + 0.5, 0, _LUT_LEVELS - 1)
    return Rendered(image=levels[index.astype(np.intp)], lungs=lungs)
