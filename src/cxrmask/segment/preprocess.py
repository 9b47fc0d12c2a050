"""MedSAM's input convention, which is not SAM's.

MedSAM feeds the encoder a plain resize of the grey image to the model's
square input, replicated to three channels and min-max scaled to [0, 1]; no
ImageNet mean/std and no padding to the long side. Boxes are given in the
resized image's pixel coordinates.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F


def resize_grey(image: np.ndarray, size: int) -> np.ndarray:
    """Resize an 8-bit grey image to ``size`` x ``size`` (antialiased bilinear), staying uint8.

    Caching images at the model's input size as uint8 keeps fine-tuning data
    small (1 byte per pixel) while the float conversion happens per batch.
    """
    return _resize_levels(torch.from_numpy(np.ascontiguousarray(image)), size).to(torch.uint8).numpy()


def _resize_levels(image: torch.Tensor, size: int) -> torch.Tensor:
    """A grey (H, W) image resized to ``size`` x ``size`` and rounded to 8-bit levels, as float.

    The one resize of both paths (host and device), so fine-tuning's uint8
    cache and inference's device batches see the same pixels.
    """
    x = image.float()
    if tuple(x.shape) == (size, size):  # the resize would be the identity (tested)
        return x
    resized = F.interpolate(
        x[None, None], size=(size, size), mode="bilinear", antialias=True, align_corners=False
    )
    return resized[0, 0].round().clamp(0, 255)


def to_device_input(images: Sequence[torch.Tensor], size: int, device: torch.device) -> torch.Tensor:
    """uint8 grey images of any sizes (H, W) -> the encoder's input (B, 3, S, S) on ``device``.

    The host path (``resize_grey`` then ``to_model_input``) done where the
    model runs: only the decoded uint8 image (1 byte per pixel) crosses to
    the GPU, and the resize and min-max scaling run there instead of in the
    host's loader workers, which then only decode.
    """
    resized = [_resize_levels(image.to(device, non_blocking=True), size) for image in images]
    return to_model_input(torch.stack(resized))


def resize_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """Resize a boolean mask by area fraction and re-threshold at one half (no aliasing of thin parts)."""
    tensor = torch.from_numpy(np.ascontiguousarray(mask)).float()[None, None]
    resized = F.interpolate(tensor, size=(size, size), mode="area")
    return (resized[0, 0] >= 0.5).numpy()


def to_model_input(images: torch.Tensor) -> torch.Tensor:
    """uint8 (B, S, S) grey images -> float (B, 3, S, S) min-max scaled to [0, 1] per image."""
    x = images.float()
    flat = x.flatten(1)
    low = flat.min(dim=1).values[:, None, None]
    high = flat.max(dim=1).values[:, None, None]
    x = (x - low) / (high - low).clamp(min=1e-8)
    return x[:, None].expand(-1, 3, -1, -1).contiguous()


def scale_boxes(boxes: np.ndarray, height: int, width: int, size: int) -> np.ndarray:
    """Map boxes (..., 4) [x0, y0, x1, y1] from an H x W image to a ``size`` x ``size`` input."""
    boxes = np.asarray(boxes, dtype=np.float32)
    scale = np.array([size / width, size / height, size / width, size / height], dtype=np.float32)
    return boxes * scale
