"""The prompt an image without ground truth gets: a start box, then re-prompts from its own mask.

The start box is the lung-map head's box for this image where the model
carries a head, else the learned prior box; :func:`cxrmask.segment.refine.refine`
then re-prompts with the mask's box until it settles. Where the model
carries a head, its lung logits are added to the decoder's (``fuse`` times
them): two models reading one embedding, the decoder sharp at the edges but
led by density, the head coarse but led by the whole chest, so a dense
finding neither cuts a bay out of the mask nor drags it below the diaphragm
unless both agree (README, "Masks that keep the finding"). Fine-tuning, the
benchmark, mask generation and the command-line tool all call this, so the
prompt measured is the prompt used.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from cxrmask.errors import ConfigError
from cxrmask.segment.boxhead import LungMapHead
from cxrmask.segment.models import PromptableSegmenter
from cxrmask.segment.preprocess import to_model_input
from cxrmask.segment.prompts import BoxPrior
from cxrmask.segment.refine import refine

log = logging.getLogger(__name__)

STARTS = ("prior", "head")


@dataclasses.dataclass(frozen=True)
class AutoPrompt:
    """Start (``prior`` or ``head``), re-prompt ``steps`` times, boxes widened by ``margin`` of the side;
    the head's logits times ``fuse`` added to the decoder's (0: the decoder's alone)."""

    prior: BoxPrior
    head: LungMapHead | None = None
    start: str = "head"
    steps: int = 3
    margin: float = 0.01
    fuse: float = 1.0

    def __post_init__(self) -> None:
        if not self.fuse >= 0:
            raise ConfigError(f"finetune.head_fusion: {self.fuse!r} is not a weight >= 0.")
        if self.start not in STARTS:
            raise ConfigError(f"segment.start: {self.start!r} is not one of {list(STARTS)}.")
        if self.start == "head" and self.head is None:
            raise ConfigError("segment.start: 'head' needs a model fine-tuned with a box head; use 'prior'.")

    def with_options(self, **changes) -> AutoPrompt:
        """The same prompt with some options changed (the benchmark's variants)."""
        return dataclasses.replace(self, **changes)

    def start_boxes(self, embeddings: torch.Tensor, input_size: int) -> torch.Tensor:
        """The first prompt of each image (B, 4), in input pixels."""
        if self.start == "head":
            return self.head.boxes(embeddings, input_size, self.margin).to(embeddings.device)
        box = torch.from_numpy(self.prior.boxes("box_prior", input_size, input_size).astype(np.float32))
        return box.to(embeddings.device).expand(len(embeddings), -1).clone()

    def __call__(
        self, model: PromptableSegmenter, embeddings: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (B, m, m) and the final boxes (B, 4) for a batch of image embeddings.

        The boxes are refined on the decoder's own masks; the head's logits
        join only the final ones, so the prompt stays the decoder's.
        """
        size = model.input_size
        logits, boxes = refine(
            model.decode, embeddings, self.start_boxes(embeddings, size), size, self.steps, self.margin
        )
        if self.head is not None and self.fuse > 0:
            logits = logits + self.fuse * self.head.lung_logits(embeddings, logits.shape[-2:]).to(logits)
        return logits, boxes


def encode_all(
    model: PromptableSegmenter, images: np.ndarray, cache: str | os.PathLike[str] | None = None
) -> torch.Tensor:
    """Embeddings (N, C, g, g), float16 on the CPU, of uint8 images (N, S, S), one image at a time.

    With ``cache``, they are read from there when its image count matches, else computed and
    written there, so a rerun of an experiment skips the encoder.
    """
    if cache is not None and Path(cache).is_file():
        stored = torch.load(cache, weights_only=True)
        if len(stored) == len(images):
            log.info("embeddings read from %s", cache)
            return stored
    parts = []
    model.eval()
    device = next(model.parameters()).device
    with torch.no_grad():
        for image in tqdm(images, desc="embed images", unit="image"):
            parts.append(model.encode(to_model_input(torch.from_numpy(image[None]).to(device))).half().cpu())
    embeddings = torch.cat(parts)
    if cache is not None:
        torch.save(embeddings, cache)
    return embeddings
