"""Held-out scores of a segmenter for every prompt it could be given, on cached embeddings.

The ground-truth box is the ceiling (MedSAM's protocol); the prior box,
the refined prior and the head's box (refined) are what an image without
ground truth gets. Masks are cleaned as mask generation cleans them, so
the numbers describe the masks the classifier sees.
"""

from __future__ import annotations

import numpy as np
import torch

from cxrmask.segment.autoprompt import AutoPrompt
from cxrmask.segment.dataset import SegData
from cxrmask.segment.models import PromptableSegmenter
from cxrmask.segment.postprocess import clean_mask
from cxrmask.segment.scoring import mask_scores, summarise

EVAL_PROMPTS = ("truth", "prior", "prior_refined", "head", "head_refined")


def prompt_logits(
    model: PromptableSegmenter, auto: AutoPrompt, embeddings: torch.Tensor, items: SegData, prompt: str
) -> torch.Tensor:
    """Logits (N, m, m) of ``items`` under one of :data:`EVAL_PROMPTS`."""
    model.eval()
    with torch.no_grad():
        if prompt == "truth":
            boxes = torch.from_numpy(items.boxes)[:, None].to(embeddings.device)
            return model.decode(embeddings, boxes)[:, 0].float()
        start, refined = prompt.split("_")[0], prompt.endswith("refined")
        logits, _ = auto.with_options(start=start, steps=auto.steps if refined else 0)(model, embeddings)
        return logits.float()


def evaluate_prompts(
    model: PromptableSegmenter,
    auto: AutoPrompt,
    embeddings: torch.Tensor,
    items: SegData,
    prompts: tuple[str, ...] = EVAL_PROMPTS,
    batch: int = 16,
) -> dict[str, dict[str, float]]:
    """Mean and tail Dice, IoU and HD95 of ``items`` per prompt (prompts needing a head are skipped
    when ``auto`` has none)."""
    out = {}
    for prompt in prompts:
        if prompt.startswith("head") and auto.head is None:
            continue
        masks = []
        for start in range(0, len(items), batch):
            part = items.subset_range(start, start + batch)
            logits = prompt_logits(model, auto, embeddings[start : start + batch].float(), part, prompt)
            masks.extend(clean_mask(item > 0) for item in logits.cpu().numpy())
        out[prompt] = summarise(mask_scores(np.stack(masks), items.masks))
    return out
