"""Batched lung-mask generation over NIH images, one shard per job.

Images are decoded and resized by DataLoader workers while the model runs;
the encoder sees batches; the logits of each image are upsampled to its own
size and thresholded, then host threads clean them (largest components,
holes filled) and write them as 0/255 PNG while the next batch is encoded.
Every mask gets a row of QC numbers (lung fraction, components, Dice
against a ground truth where one exists), so a failure of the segmenter
shows in a table rather than in the classifier.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from cxrmask.config import InferenceSettings
from cxrmask.errors import ConfigError, InputError
from cxrmask.imageio import read_grey, read_mask, write_png
from cxrmask.segment.models import PromptableSegmenter
from cxrmask.segment.postprocess import clean_mask, dice
from cxrmask.segment.preprocess import resize_grey, to_model_input
from cxrmask.segment.prompts import BoxPrior
from cxrmask.torchutil import autocast

log = logging.getLogger(__name__)

QC_COLUMNS = ("image", "height", "width", "lung_fraction", "raw_lung_fraction", "fallback")


class _Images(Dataset):
    """Decodes one image and resizes it to the encoder's input (runs in worker processes)."""

    def __init__(self, paths: Sequence[Path], size: int):
        self.paths, self.size = list(paths), size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, int, int]:
        image = read_grey(self.paths[index])
        height, width = image.shape
        return torch.from_numpy(resize_grey(image, self.size)), height, width, index


def shard(items: Sequence, index: int, count: int) -> list:
    """The ``index``-th of ``count`` contiguous, near-equal parts of ``items``."""
    if not 0 <= index < count:
        raise ConfigError(f"shard {index} does not exist among {count} shards.")
    bounds = np.linspace(0, len(items), count + 1).round().astype(int)
    return list(items[bounds[index] : bounds[index + 1]])


def generate_masks(
    model: PromptableSegmenter,
    images: Sequence[tuple[str, Path]],
    prior: BoxPrior,
    out_dir: str | os.PathLike[str],
    settings: InferenceSettings,
    device: torch.device,
    truth_dir: str | os.PathLike[str] | None = None,
) -> pd.DataFrame:
    """Segment ``images`` (name, path) into ``out_dir/<name>`` PNGs; return one QC row per image.

    An empty or implausibly small mask (below ``min_lung_fraction`` of the
    image) fails the job (``on_empty: fail``) or is replaced by the full image
    (``full_image``: the classifier then sees the original) and counted; more
    than ``max_empty_fraction`` such masks fail the job either way, since
    that many means the segmenter, not the images, is at fault.
    """
    out_dir = Path(out_dir)
    model.to(device).eval()
    size = model.input_size
    boxes = torch.from_numpy(prior.boxes(settings.prompt, size, size).astype(np.float32)).to(device)
    loader = DataLoader(
        _Images([path for _, path in images], size),
        batch_size=settings.batch_size,
        num_workers=settings.num_workers,
        pin_memory=device.type == "cuda",
        persistent_workers=False,
    )
    # Clean-up and PNG writing release the GIL, so host threads keep pace with a GPU encoder; the
    # window bounds how many full-size raw masks wait in memory.
    threads = max(1, settings.num_workers)
    window = 4 * threads
    pending: deque[Future] = deque()
    rows = []
    with torch.inference_mode(), ThreadPoolExecutor(threads, thread_name_prefix="postprocess") as pool:
        for batch, heights, widths, indexes in tqdm(loader, desc="segment", unit="batch"):
            with autocast(device, settings.amp):
                embeddings = model.encode(to_model_input(batch.to(device, non_blocking=True)))
                logits = model.decode(embeddings, boxes[None].expand(len(batch), -1, -1)).amax(dim=1)
            for logit, height, width, index in zip(logits.float(), heights, widths, indexes, strict=True):
                name = images[int(index)][0]
                full = F.interpolate(logit[None, None], size=(int(height), int(width)), mode="bilinear")
                raw = (full[0, 0] > 0).cpu().numpy()
                pending.append(pool.submit(_finish, name, raw, out_dir, settings, truth_dir))
                while len(pending) > window:
                    rows.append(pending.popleft().result())
        rows.extend(future.result() for future in pending)
    columns = [*QC_COLUMNS, "dice"] if truth_dir is not None else list(QC_COLUMNS)
    table = pd.DataFrame(rows, columns=columns)
    fallback = int(table["fallback"].sum())
    if fallback:
        log.warning(
            "%d of %d masks were empty or too small and replaced by the full image", fallback, len(table)
        )
    if len(table) and fallback / len(table) > settings.max_empty_fraction:
        raise InputError(
            f"{fallback} of {len(table)} masks are empty or below "
            f"{settings.min_lung_fraction:.0%} of the image "
            f"(limit {settings.max_empty_fraction:.1%}): check the segmenter checkpoint, the box prompt "
            "(segment.prompt) and the images."
        )
    return table


def _finish(name: str, raw: np.ndarray, out_dir: Path, settings: InferenceSettings, truth_dir) -> dict:
    """Clean one mask, apply the empty-mask policy, write it and return its QC row."""
    mask = clean_mask(raw, settings.keep_components, settings.fill_holes)
    fraction = float(mask.mean())
    fallback = fraction < settings.min_lung_fraction
    if fallback:
        if settings.on_empty == "fail":
            raise InputError(
                f"{name}: the lung mask covers {fraction:.1%} of the image "
                "(below segment.min_lung_fraction). "
                "Check the image, or set segment.on_empty: full_image to keep the original image for it."
            )
        mask = np.ones_like(mask)
    write_png(out_dir / name, mask)
    row = {
        "image": name,
        "height": mask.shape[0],
        "width": mask.shape[1],
        "lung_fraction": float(mask.mean()),
        "raw_lung_fraction": float(raw.mean()),
        "fallback": fallback,
    }
    if truth_dir is not None:
        truth_path = Path(truth_dir) / name
        row["dice"] = dice(mask, read_mask(truth_path)) if truth_path.is_file() else float("nan")
    return row
