"""A lung-box predictor on the image embedding: the no-ground-truth prompt learned from the masks.

A prompt-free MedSAM (the self-prompting idea) needs the box the image's
lungs have, not the average box. A regression of four numbers from ~200
embeddings overfits; a coarse lung map on the embedding grid gets a label
per cell (thousands per image) from the same masks, and its box (largest two
parts) is the prompt. The head is a few convolutions on the frozen
encoder's output, so the encoder still runs once per image.
"""

from __future__ import annotations

import copy
import logging

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cxrmask.config import HeadSettings
from cxrmask.segment.refine import box_of_logits

log = logging.getLogger(__name__)


class LungMapHead(nn.Module):
    """Embedding (B, C, g, g) -> lung logits (B, 1, g, g)."""

    def __init__(self, channels: int = 256, width: int = 32):
        super().__init__()
        self.config = {"channels": channels, "width": width}
        self.net = nn.Sequential(
            nn.Conv2d(channels, width, 1),
            nn.GELU(),
            nn.Conv2d(width, width, 3, padding=2, dilation=2),
            nn.GELU(),
            nn.Conv2d(width, width, 3, padding=4, dilation=4),
            nn.GELU(),
            nn.Conv2d(width, 1, 1),
        )

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        return self.net(embeddings.float())

    def lung_logits(self, embeddings: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
        """The map's lung logits (B, size, size), upsampled bilinearly (no gradient): the decoder's grid for
        fusion and QC, four times the embedding grid for the prompt box."""
        with torch.no_grad():
            return F.interpolate(self(embeddings).float(), size=size, mode="bilinear")[:, 0]

    def boxes(self, embeddings: torch.Tensor, input_size: int, margin: float) -> torch.Tensor:
        """Prompt boxes (B, 4) in input pixels; the whole image where the map finds no lung."""
        logits = self.lung_logits(embeddings, 4 * embeddings.shape[-1])
        out = []
        for item in logits.cpu().numpy():
            box = box_of_logits(item, input_size, margin)
            out.append(box if box is not None else np.array([0, 0, input_size - 1, input_size - 1]))
        return torch.from_numpy(np.stack(out).astype(np.float32))


def _targets(masks: torch.Tensor, grid: int) -> torch.Tensor:
    """Boolean masks (N, m, m) -> lung fraction per embedding cell (N, 1, g, g)."""
    return F.adaptive_avg_pool2d(masks.float()[:, None], grid)


def _loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    probs = torch.sigmoid(logits)
    inter = (probs * target).flatten(1).sum(1)
    dice = 1 - (2 * inter + 1) / (probs.flatten(1).sum(1) + target.flatten(1).sum(1) + 1)
    return dice.mean() + F.binary_cross_entropy_with_logits(logits, target)


def train_box_head(
    train_embeddings: torch.Tensor,
    train_masks: torch.Tensor,
    val_embeddings: torch.Tensor,
    val_masks: torch.Tensor,
    settings: HeadSettings,
    seed: int,
) -> tuple[LungMapHead, list[dict[str, float]]]:
    """Fit the head on embeddings and their masks; keep the epoch with the lowest validation loss."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    head = LungMapHead(channels=train_embeddings.shape[1])
    grid = train_embeddings.shape[-1]
    train_t, val_t = _targets(train_masks, grid), _targets(val_masks, grid)
    optimizer = torch.optim.AdamW(head.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    best, best_state, history = float("inf"), copy.deepcopy(head.state_dict()), []
    batch_size = settings.batch_size
    for epoch in range(1, settings.epochs + 1):
        head.train()
        losses, order = [], rng.permutation(len(train_t))
        for start in range(0, len(order), batch_size):
            index = torch.as_tensor(order[start : start + batch_size])
            loss = _loss(head(train_embeddings[index]), train_t[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        head.eval()
        with torch.no_grad():
            val_loss = float(_loss(head(val_embeddings), val_t))
        history.append({"epoch": epoch, "train_loss": float(np.mean(losses)), "val_loss": val_loss})
        if val_loss < best:
            best, best_state = val_loss, copy.deepcopy(head.state_dict())
    head.load_state_dict(best_state)
    head.eval()
    log.info("box head: best val loss %.4f", best)
    return head, history
