"""Reading and writing the images and masks every stage exchanges.

Real sources are untidy: NIH ships two RGBA PNGs among 112,120 grey ones,
lung-mask sets come as BMP, PNG or NPY, sometimes anti-aliased, sometimes
0/1, sometimes 0/255, sometimes 16-bit. Everything enters the pipeline
through these two readers, so downstream code only ever sees 8-bit grey
images and boolean masks, and a corrupt file fails once, by name.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from cxrmask.atomic import atomic_path
from cxrmask.errors import DecodeError, InputError

ARRAY_SUFFIXES = {".npy"}
# What a job that fails on an undecodable image adds to the error: the key that lets the run go on without it.
SKIP_HINT = "Or set data.on_bad_image: skip to leave such images out."


def _to_uint8(array: np.ndarray) -> np.ndarray:
    """Map any numeric array onto 0..255 by its own range (16-bit and float inputs)."""
    if array.dtype == np.uint8:
        return array
    if array.dtype == bool:
        return array.astype(np.uint8) * 255
    values = array.astype(np.float64)
    low, high = float(np.min(values)), float(np.max(values))
    if high <= low:
        return np.zeros(values.shape, dtype=np.uint8)
    return np.round((values - low) * (255.0 / (high - low))).astype(np.uint8)


def _load_array(path: Path) -> np.ndarray:
    """Decode ``path`` into a 2-D numeric array, whatever its container."""
    if not path.is_file():
        raise InputError(
            f"{path}: file not found. Check the path in the config or re-run the step that makes it."
        )
    try:
        if path.suffix.lower() in ARRAY_SUFFIXES:
            array = np.load(path, allow_pickle=False)
        else:
            with Image.open(path) as image:
                image.load()
                if image.mode in ("RGB", "RGBA", "LA", "P", "CMYK", "YCbCr", "1", "PA", "RGBX"):
                    image = image.convert("L")
                array = np.array(image)
    except (OSError, SyntaxError, ValueError, UnidentifiedImageError, Image.DecompressionBombError) as exc:
        raise DecodeError(
            f"{path}: cannot decode ({exc}). The file is corrupt or truncated: "
            "download it again, or remove it from the input folder."
        ) from exc
    if array.ndim == 3 and array.shape[-1] in (3, 4):
        array = array[..., :3].mean(axis=-1)
    if array.ndim == 3 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 2 or min(array.shape) < 8:
        raise InputError(f"{path}: expected a 2-D image, found an array of shape {array.shape}.")
    if not np.issubdtype(array.dtype, np.number) and array.dtype != bool:
        raise InputError(f"{path}: unsupported pixel type {array.dtype}.")
    if np.issubdtype(array.dtype, np.inexact) and not np.isfinite(array).all():
        raise InputError(
            f"{path}: holds NaN or infinite values, which have no grey level. "
            "Re-export the array with finite values."
        )
    return array


def read_grey(path: str | os.PathLike[str]) -> np.ndarray:
    """Return the image at ``path`` as 8-bit grey (H, W).

    Colour and RGBA images are converted to luminance; 16-bit and float
    images are rescaled by their own range, which keeps 12-bit radiographs
    stored in 16-bit containers from turning black.
    """
    return _to_uint8(_load_array(Path(path)))


def read_mask(path: str | os.PathLike[str]) -> np.ndarray:
    """Return the mask at ``path`` as a boolean array (H, W).

    Binarised at half the file's maximum, so 0/1, 0/255 and anti-aliased
    masks all mean the same thing and no grey edge reaches a box computation.
    """
    array = _load_array(Path(path)).astype(np.float64)
    peak = float(array.max())
    if peak <= 0:
        return np.zeros(array.shape, dtype=bool)
    return array > peak / 2.0


def write_png(path: str | os.PathLike[str], array: np.ndarray) -> None:
    """Write an 8-bit grey PNG atomically (boolean masks become 0/255)."""
    with atomic_path(path) as tmp:
        Image.fromarray(_to_uint8(np.asarray(array))).save(tmp, format="PNG")


def decode_errors(paths: Sequence[str | os.PathLike[str]], workers: int = 1) -> list[str]:
    """For each path, why it cannot be read as a grey image ('' when it can), decoding in ``workers`` threads.

    Lets a job that may skip bad images (``data.on_bad_image: skip``) decide
    which to leave out before its real work, with the same reader and so the
    same verdict as every other stage.
    """

    def check(path: str | os.PathLike[str]) -> str:
        try:
            read_grey(path)
        except InputError as exc:
            return str(exc)
        return ""

    with ThreadPoolExecutor(max(1, workers)) as pool:
        return list(pool.map(check, paths))
