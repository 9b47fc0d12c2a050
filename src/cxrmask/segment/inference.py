"""Batched lung-mask generation over NIH images, one shard per job.

Images are decoded by DataLoader workers while the model runs; only the
uint8 images cross to the device, which resizes and scales them; the encoder
(bf16 weights and compiled on CUDA) sees batches; the logits of each image
are upsampled to its own size and thresholded on the device and copied back
while the next batch is queued, then host threads clean them (largest
components, holes filled) and write them as 0/255 PNG while the next batch
is encoded.
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
from cxrmask.segment.autoprompt import AutoPrompt
from cxrmask.segment.fast import prepare_for_inference
from cxrmask.segment.models import PromptableSegmenter
from cxrmask.segment.postprocess import clean_mask, dice
from cxrmask.segment.preprocess import to_device_input
from cxrmask.segment.qc import QCReference, no_truth_signals
from cxrmask.torchutil import autocast

log = logging.getLogger(__name__)

QC_COLUMNS = ("image", "height", "width", "lung_fraction", "raw_lung_fraction", "fallback")
NO_TRUTH_QC = (
    "certainty",
    "agreement",
    "map_agreement",
    "components",
    "balance",
    "solidity",
    "qc_score",
    "flag",
    "reason",
)


class _Images(Dataset):
    """Decodes one image at its own size (runs in worker processes); the device resizes it."""

    def __init__(self, paths: Sequence[Path]):
        self.paths = list(paths)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return torch.from_numpy(read_grey(self.paths[index])), index


def _collate(items: list[tuple[torch.Tensor, int]]) -> tuple[list[torch.Tensor], list[int]]:
    """Images of different sizes stay a list (resized on the device); the loader pins each one."""
    return [image for image, _ in items], [index for _, index in items]


def shard(items: Sequence, index: int, count: int) -> list:
    """The ``index``-th of ``count`` contiguous, near-equal parts of ``items``."""
    if not 0 <= index < count:
        raise ConfigError(f"shard {index} does not exist among {count} shards.")
    bounds = np.linspace(0, len(items), count + 1).round().astype(int)
    return list(items[bounds[index] : bounds[index + 1]])


def generate_masks(
    model: PromptableSegmenter,
    images: Sequence[tuple[str, Path]],
    prompt: AutoPrompt,
    out_dir: str | os.PathLike[str],
    settings: InferenceSettings,
    device: torch.device,
    truth_dir: str | os.PathLike[str] | None = None,
    qc: QCReference | None = None,
) -> pd.DataFrame:
    """Segment ``images`` (name, path) into ``out_dir/<name>`` PNGs; return one QC row per image.

    ``settings.prompt`` ``auto`` prompts with ``prompt`` (the model's
    no-ground-truth prompt); ``box_prior`` and ``per_lung`` with its prior's
    boxes. With ``qc``, each row also gets the no-ground-truth QC score,
    flag and reason.

    An empty or implausibly small mask (below ``min_lung_fraction`` of the
    image) fails the job (``on_empty: fail``) or is replaced by the full image
    (``full_image``: the classifier then sees the original) and counted; more
    than ``max_empty_fraction`` such masks fail the job either way, since
    that many means the segmenter, not the images, is at fault. The model is
    prepared in place (``prepare_for_inference``): on CUDA its encoder stays
    in bf16 and compiled afterwards.
    """
    out_dir = Path(out_dir)
    prepare_for_inference(model, device, settings.bf16_weights, settings.compile)
    size = model.input_size
    fixed = _fixed_boxes(prompt, settings, size, device)
    loader = _loader(images, settings, device)
    # Clean-up and PNG writing release the GIL, so host threads keep pace with a GPU encoder; the
    # window bounds how many full-size raw masks wait in memory.
    threads = max(1, settings.num_workers)
    window = 4 * threads
    pending: deque[Future] = deque()
    rows = []

    def hand_over(masks: _DeviceMasks) -> None:
        """Give a finished batch's masks to the clean-up threads, keeping at most ``window`` waiting."""
        for (name, raw), check in zip(masks.arrays(), masks.checks, strict=True):
            pending.append(pool.submit(_finish, name, raw, out_dir, settings, truth_dir, check))
            while len(pending) > window:
                rows.append(pending.popleft().result())

    with torch.inference_mode(), ThreadPoolExecutor(threads, thread_name_prefix="postprocess") as pool:
        previous = None
        for batch, indexes in tqdm(loader, desc="segment", unit="batch"):
            # Every batch has one shape (the last is padded), so a compiled encoder compiles once.
            inputs = to_device_input(batch, size, device)
            inputs = F.pad(inputs, (0, 0, 0, 0, 0, 0, 0, settings.batch_size - len(batch)))
            with autocast(device, settings.amp):
                embeddings = model.encode(inputs)[: len(batch)]
                logits, checks = _decode(model, prompt, fixed, embeddings, settings, qc)
            current = _DeviceMasks(
                [images[index][0] for index in indexes],
                logits.float(),
                [image.shape for image in batch],
                checks or [None] * len(batch),
            )
            # This batch's work is queued on the device; the previous one's masks are read meanwhile.
            if previous is not None:
                hand_over(previous)
            previous = current
        if previous is not None:
            hand_over(previous)
        rows.extend(future.result() for future in pending)
    return _mask_table(rows, settings, qc is not None, truth_dir is not None)


def _fixed_boxes(
    prompt: AutoPrompt, settings: InferenceSettings, size: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The prior's boxes for ``box_prior`` and ``per_lung`` (and its whole-lung box); None for ``auto``."""
    if settings.prompt == "auto":
        return None

    def prior_boxes(kind: str) -> torch.Tensor:
        return torch.from_numpy(prompt.prior.boxes(kind, size, size).astype(np.float32)).to(device)

    return prior_boxes(settings.prompt), prior_boxes("box_prior")


def _loader(
    images: Sequence[tuple[str, Path]], settings: InferenceSettings, device: torch.device
) -> DataLoader:
    """Decoding workers for the images, in order; each batch a list of uint8 images of their own sizes."""
    return DataLoader(
        _Images([path for _, path in images]),
        batch_size=settings.batch_size,
        num_workers=settings.num_workers,
        collate_fn=_collate,
        pin_memory=device.type == "cuda",
        persistent_workers=False,
    )


def _decode(
    model: PromptableSegmenter,
    prompt: AutoPrompt,
    fixed: tuple[torch.Tensor, torch.Tensor] | None,
    embeddings: torch.Tensor,
    settings: InferenceSettings,
    qc: QCReference | None,
) -> tuple[torch.Tensor, list | None]:
    """One batch's mask logits from its embeddings, and its QC checks (None without a QC reference)."""
    if fixed is not None:
        boxes, whole = fixed
        logits = model.decode(embeddings, boxes[None].expand(len(embeddings), -1, -1)).amax(dim=1)
        final = whole.expand(len(embeddings), -1)
    else:
        logits, final = prompt(model, embeddings)
    checks = _checks(model, prompt, qc, embeddings, logits, final, settings) if qc else None
    return logits, checks


def _mask_table(rows: list[dict], settings: InferenceSettings, qc: bool, truth: bool) -> pd.DataFrame:
    """The QC rows as a table, after the empty-mask policy over the whole shard."""
    columns = [*QC_COLUMNS, *(NO_TRUTH_QC if qc else ()), *(("dice",) if truth else ())]
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


class _DeviceMasks:
    """One batch's raw masks at each image's size, copied to the host without waiting for the device.

    The copies are queued behind the batch's encoder and decoder work, so the
    host can queue the next batch before reading these; on a CPU the masks
    are ready at once.
    """

    def __init__(self, names: list[str], logits: torch.Tensor, shapes: list[torch.Size], checks: list):
        self.names, self.checks = names, checks
        self.masks = [
            (F.interpolate(logit[None, None], size=tuple(shape), mode="bilinear")[0, 0] > 0).to(
                "cpu", non_blocking=True
            )
            for logit, shape in zip(logits, shapes, strict=True)
        ]
        self.copied = torch.cuda.Event() if logits.is_cuda else None
        if self.copied is not None:
            self.copied.record()

    def arrays(self) -> list[tuple[str, np.ndarray]]:
        """(name, boolean mask) per image, once the copies are done."""
        if self.copied is not None:
            self.copied.synchronize()
        return [(name, mask.numpy()) for name, mask in zip(self.names, self.masks, strict=True)]


def _checks(model, prompt: AutoPrompt, qc: QCReference, embeddings, logits, boxes, settings) -> list:
    """Per image: the QC reference and its signals (:func:`~cxrmask.segment.qc.no_truth_signals`).
    Decoder passes only."""
    signals = no_truth_signals(model, prompt.head, embeddings, logits, boxes, settings.keep_components)
    return [(qc, *signal) for signal in signals]


def _finish(
    name: str,
    raw: np.ndarray,
    out_dir: Path,
    settings: InferenceSettings,
    truth_dir,
    check: tuple[QCReference, np.ndarray, np.ndarray, float, float, float | None] | None = None,
) -> dict:
    """Clean one mask, apply the empty-mask policy, write it and return its QC row.

    ``check`` is from :func:`_checks`; the shape statistics need only the decoder's grid.
    """
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
    if check is not None:
        reference, small, cleaned, sure, agreement, on_map = check
        assessed = reference.assess(small, cleaned, sure, agreement, on_map)
        row.update({key: assessed[key] for key in NO_TRUTH_QC})
    if truth_dir is not None:
        truth_path = Path(truth_dir) / name
        row["dice"] = dice(mask, read_mask(truth_path)) if truth_path.is_file() else float("nan")
    return row
