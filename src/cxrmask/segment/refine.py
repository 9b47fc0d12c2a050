"""Iterative box refinement: re-prompt with the box of the mask the last box gave.

A prior box is the same for every image, so it is too loose on a small
chest and too tight on a large one. The mask it yields is closer to the
lungs than the box was; that mask's box (largest two components, widened by
a small margin like the training jitter) replaces the prompt, which can
therefore shrink as well as grow. A few rounds settle; it costs decoder
passes only, never the encoder.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from cxrmask.segment.postprocess import keep_largest

Decoder = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def box_of_logits(logits: np.ndarray, input_size: int, margin: float) -> np.ndarray | None:
    """Box [x0, y0, x1, y1] in input pixels around the two largest parts of ``logits > 0``.

    ``logits`` is on the decoder's grid; the box is scaled to the encoder's
    input and widened by ``margin`` (a fraction of the side). None when the
    mask is empty, so the caller keeps its previous box.
    """
    mask = keep_largest(logits > 0, 2)
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    scale = input_size / logits.shape[-1]
    box = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=np.float64) * scale
    box[2:] -= 1
    box += margin * input_size * np.array([-1, -1, 1, 1])
    return np.clip(box, 0, input_size - 1).astype(np.float32)


def refine(
    decode: Decoder,
    embeddings: torch.Tensor,
    boxes: torch.Tensor,
    input_size: int,
    steps: int,
    margin: float,
    tolerance: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits (B, m, m) and final boxes (B, 4) after up to ``steps`` re-prompts from ``boxes`` (B, 4).

    An image stops when no side moves more than ``tolerance`` input pixels.
    """
    boxes = boxes.clone().float()
    logits = decode(embeddings, boxes[:, None])[:, 0].float()
    active = np.ones(len(boxes), dtype=bool)
    for _ in range(steps):
        changed = []
        for i in np.flatnonzero(active):
            new = box_of_logits(logits[i].cpu().numpy(), input_size, margin)
            if new is None or np.abs(new - boxes[i].cpu().numpy()).max() <= tolerance:
                active[i] = False
                continue
            boxes[i] = torch.from_numpy(new).to(boxes.device)
            changed.append(i)
        if not changed:
            break
        index = torch.as_tensor(changed, device=boxes.device)
        logits[index] = decode(embeddings[index], boxes[index][:, None])[:, 0].float()
    return logits, boxes
