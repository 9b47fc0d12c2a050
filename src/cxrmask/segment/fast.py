"""Fast paths for SAM's ViT encoder, each numerically equivalent to ``segment_anything``'s own.

- Attention through ``scaled_dot_product_attention`` (fused kernels on a GPU)
  with SAM's decomposed relative-position term passed as the additive
  attention bias, instead of an explicit softmax over a materialised score
  matrix. Same parameters, same state-dict keys, same outputs (tested in
  fp32 against the stock module).
- Activation checkpointing over the ViT blocks for full fine-tuning: only
  each block's input is kept and its inside is recomputed in the backward
  pass, trading about a third more compute for most of the activation memory.
- Inference preparation: encoder weights in bf16 (not autocast alone, which
  re-casts every weight on every call) and ``torch.compile``, both only on
  CUDA, where they pay.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from segment_anything.modeling.image_encoder import Attention
from torch import nn
from torch.utils.checkpoint import checkpoint

log = logging.getLogger(__name__)


class SdpaAttention(nn.Module):
    """SAM's ViT attention (windowed or global) computed by ``scaled_dot_product_attention``.

    Takes over the parameters of a ``segment_anything`` ``Attention`` module
    (shared, not copied), so checkpoints load and save under the same keys.
    The relative-position term is a function of the query only
    (``q · R[h_q - h_k] + q · R[w_q - w_k]``), so it is built once per call as
    a bias of shape (B, heads, L, L) and added to the scaled scores inside the
    fused kernel; SAM adds it to the scores of the unscaled query, as here.
    """

    def __init__(self, reference: nn.Module):
        super().__init__()
        self.num_heads = reference.num_heads
        self.scale = reference.scale
        self.qkv = reference.qkv
        self.proj = reference.proj
        self.use_rel_pos = reference.use_rel_pos
        if self.use_rel_pos:
            self.rel_pos_h = reference.rel_pos_h
            self.rel_pos_w = reference.rel_pos_w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, H, W, C) tokens -> (B, H, W, C), as ``segment_anything``'s ``Attention.forward``."""
        batch, height, width, _ = x.shape
        tokens = height * width
        qkv = self.qkv(x).reshape(batch, tokens, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # each (B, heads, L, head_dim)
        bias = self._rel_pos_bias(q, height, width) if self.use_rel_pos else None
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=self.scale)
        out = out.view(batch, self.num_heads, height, width, -1).permute(0, 2, 3, 1, 4)
        return self.proj(out.reshape(batch, height, width, -1))

    def _rel_pos_bias(self, q: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """SAM's decomposed relative-position term as an additive bias (B, heads, L, L) in q's dtype."""
        rel_h = _relative_table(self.rel_pos_h, height).to(q.dtype)  # (H, H, head_dim)
        rel_w = _relative_table(self.rel_pos_w, width).to(q.dtype)  # (W, W, head_dim)
        grid = q.reshape(*q.shape[:2], height, width, -1)
        term_h = torch.einsum("bnhwc,hkc->bnhwk", grid, rel_h)
        term_w = torch.einsum("bnhwc,wkc->bnhwk", grid, rel_w)
        bias = term_h[..., :, None] + term_w[..., None, :]  # (B, heads, H, W, H_k, W_k)
        return bias.reshape(*q.shape[:2], height * width, height * width)


def _relative_table(rel_pos: torch.Tensor, size: int) -> torch.Tensor:
    """Embedding of every (query, key) offset along one axis: ``rel_pos[q - k + size - 1]``, (size, size, C).

    ``segment_anything``'s ``get_rel_pos`` for equal query and key sizes,
    with the index built on the table's device (its CPU index would make a
    compiled graph copy it to the GPU on every call). SAM sizes each table
    for its block (2 x window - 1, or 2 x grid - 1 for global blocks), so
    ``get_rel_pos``'s interpolation to another length never applies here.
    """
    if rel_pos.shape[0] != 2 * size - 1:
        raise ValueError(
            f"relative-position table of {rel_pos.shape[0]} rows for {size} tokens a side "
            f"(expected {2 * size - 1}): the encoder was built for another image or window size."
        )
    index = torch.arange(size, device=rel_pos.device)
    return rel_pos[index[:, None] - index[None, :] + (size - 1)]


def use_sdpa_attention(encoder: nn.Module) -> int:
    """Replace every ``segment_anything`` ``Attention`` in ``encoder`` by ``SdpaAttention``; return how many.

    Applies to SAM's ViT (MedSAM); LiteMedSAM's TinyViT has its own attention
    and is left as it is (0 replaced).
    """
    replaced = 0
    for module in list(encoder.modules()):
        for name, child in list(module.named_children()):
            if type(child) is Attention:
                setattr(module, name, SdpaAttention(child))
                replaced += 1
    return replaced


def checkpointed_vit_forward(encoder: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """``ImageEncoderViT.forward`` with each block under activation checkpointing.

    Mirrors ``segment_anything``'s forward step for step (patch embedding,
    absolute position embedding, blocks, neck); the non-reentrant checkpoint
    recomputes a block in the backward pass and gives the same gradients.
    """
    x = encoder.patch_embed(images)
    if encoder.pos_embed is not None:
        x = x + encoder.pos_embed
    for block in encoder.blocks:
        x = checkpoint(block, x, use_reentrant=False)
    return encoder.neck(x.permute(0, 3, 1, 2))


def resolve_compile(choice: bool | None, device: torch.device) -> bool:
    """The config's ``compile`` key: ``null`` compiles on CUDA only (on a CPU it costs more than it saves)."""
    return device.type == "cuda" if choice is None else bool(choice)


def prepare_for_inference(
    model: nn.Module, device: torch.device, bf16_weights: bool, compile_choice: bool | None
) -> bool:
    """Move ``model`` to ``device`` for inference, in place; return whether its encoder is compiled.

    Callers pass batches of one shape (padded) so the compiled encoder is
    compiled once.

    On CUDA the image encoder's weights become bf16 when ``bf16_weights`` is
    set (the decoder and prompt encoder stay fp32: box coordinates through
    SAM's random Fourier features lose too much in bf16, and they cost little).
    A compiled encoder keeps its state-dict keys (``nn.Module.compile``).
    """
    model.to(device)
    if bf16_weights and device.type == "cuda":
        model.image_encoder.to(torch.bfloat16)
    model.eval()  # after the cast: TinyViT caches its attention biases when set to eval
    compiled = resolve_compile(compile_choice, device)
    # ``nn.Module.compile`` sets ``_compiled_call_impl``; a model prepared twice is compiled once.
    if compiled and getattr(model.image_encoder, "_compiled_call_impl", None) is None:
        model.image_encoder.compile(dynamic=False)
        log.info("image encoder compiled with torch.compile (the first batch takes longer)")
    return compiled
