"""A small SAM and synthetic lung images, shared by the segmentation tests.

The small SAM is built from ``segment_anything``'s own classes through the
project's ``SegmenterSettings.spec``/``build_segmenter``, so the ViT-B code path (MedSAM's
architecture) runs in seconds on a CPU. The images carry two bright ellipses
("lungs") on noise: a shape a mask decoder learns in a few epochs, so a test
can tell training from noise.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from skimage.draw import ellipse

from cxrmask.config import SegmenterSettings
from cxrmask.imageio import write_png
from cxrmask.segment.models import PromptableSegmenter, build_segmenter

TINY_ENCODER = {"embed_dim": 48, "depth": 2, "num_heads": 2, "global_attn_indexes": [1]}


def tiny_spec(image_size: int = 256) -> dict:
    """The spec of a two-block, 48-wide SAM ViT (the real decoder and prompt encoder)."""
    return SegmenterSettings(image_size=image_size, encoder=TINY_ENCODER).spec


def tiny_sam(seed: int = 0, image_size: int = 256) -> PromptableSegmenter:
    """A small SAM with random weights fixed by ``seed``."""
    torch.manual_seed(seed)
    return build_segmenter(tiny_spec(image_size))


def lung_image(rng: np.random.Generator, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """A noisy grey image with two bright ellipses, and the ellipses' mask."""
    image = rng.normal(60, 20, (height, width))
    mask = np.zeros((height, width), dtype=bool)
    centre_y = height * rng.uniform(0.45, 0.55)
    radius_y, radius_x = height * rng.uniform(0.25, 0.32), width * rng.uniform(0.13, 0.17)
    for centre_x in (width * rng.uniform(0.28, 0.33), width * rng.uniform(0.67, 0.72)):
        rows, cols = ellipse(centre_y, centre_x, radius_y, radius_x, shape=(height, width))
        mask[rows, cols] = True
    image[mask] += 120
    return np.clip(image, 0, 255).astype(np.uint8), mask


def write_lung_set(root: Path, sizes: list[tuple[int, int]], seed: int = 0) -> list[str]:
    """Write ``images/<id>.png`` and ``masks/<id>.png`` (0/255) for each (height, width); return the ids."""
    rng = np.random.default_rng(seed)
    ids = []
    for index, (height, width) in enumerate(sizes):
        image, mask = lung_image(rng, height, width)
        key = f"case{index:02d}"
        write_png(root / "images" / f"{key}.png", image)
        write_png(root / "masks" / f"{key}.png", mask)
        ids.append(key)
    return ids


def force_constant_logits(model: PromptableSegmenter, sign: float) -> PromptableSegmenter:
    """Set the mask decoder's weights so every mask logit has ``sign``, whatever the image and box.

    The last layer of each output hypernetwork is zeroed with bias ``sign``,
    and the last upscaling layer outputs a positive constant, so each logit
    is ``sign`` times a positive sum: an empty mask for a negative sign, the
    whole image for a positive one.
    """
    decoder = model.mask_decoder
    with torch.no_grad():
        for mlp in decoder.output_hypernetworks_mlps:
            mlp.layers[-1].weight.zero_()
            mlp.layers[-1].bias.fill_(sign)
        last_upscale = [m for m in decoder.output_upscaling if isinstance(m, torch.nn.ConvTranspose2d)][-1]
        last_upscale.weight.zero_()
        last_upscale.bias.fill_(1.0)
    return model
