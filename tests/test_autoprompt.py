"""The prompt of an image without ground truth: its checks, its start box and the embedding cache."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from tinysam import tiny_sam

from cxrmask.errors import ConfigError
from cxrmask.segment.autoprompt import AutoPrompt, encode_all
from cxrmask.segment.boxhead import LungMapHead
from cxrmask.segment.prompts import BoxPrior

pytestmark = pytest.mark.usefixtures("one_torch_thread")

PRIOR = BoxPrior(
    whole=(0.1, 0.2, 0.9, 0.8), lungs=((0.1, 0.2, 0.45, 0.8), (0.55, 0.2, 0.9, 0.8)), margin=0.0, n_masks=3
)


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (3, 256, 256), dtype=np.uint8)


def test_an_unknown_start_and_a_head_start_without_a_head_are_config_errors():
    with pytest.raises(ConfigError, match=r"^segment\.start: 'box' is not one of \['prior', 'head'\]\.$"):
        AutoPrompt(prior=PRIOR, start="box")
    with pytest.raises(
        ConfigError, match=r"^segment\.start: 'head' needs a model fine-tuned with a box head"
    ):
        AutoPrompt(prior=PRIOR)
    assert AutoPrompt(prior=PRIOR, start="prior").start == "prior"


def test_options_change_only_what_they_name():
    auto = AutoPrompt(prior=PRIOR, start="prior", steps=3, margin=0.02)
    changed = auto.with_options(steps=0)
    assert (changed.steps, changed.start, changed.margin, changed.prior) == (0, "prior", 0.02, PRIOR)
    assert auto.steps == 3


def test_the_prior_start_is_the_prior_box_in_input_pixels_for_every_image():
    embeddings = torch.zeros(4, 8, 2, 2, dtype=torch.float16)
    boxes = AutoPrompt(prior=PRIOR, start="prior").start_boxes(embeddings, 200)
    assert boxes.dtype == torch.float32 and boxes.shape == (4, 4)
    assert torch.allclose(boxes, torch.tensor([[20.0, 40.0, 180.0, 160.0]] * 4))
    boxes[0, 0] = -1  # each image's box is its own, not a view of one shared row
    assert boxes[1, 0] == 20


def test_embeddings_are_cached_and_read_back_only_for_the_same_image_count(images, tmp_path, caplog, capsys):
    cache = tmp_path / "embeddings.pt"
    model = tiny_sam(seed=0)
    first = encode_all(model, images, cache)
    bar = capsys.readouterr().err
    assert "embed images: 100%" in bar and "3/3 [" in bar and "image/s]" in bar
    assert first.dtype == torch.float16 and first.shape[0] == 3 and cache.is_file()
    assert torch.equal(torch.load(cache, weights_only=True), first)
    other = tiny_sam(seed=1)  # another encoder: a read from the cache gives the first one's embeddings
    with caplog.at_level(logging.INFO, logger="cxrmask.segment.autoprompt"):
        again = encode_all(other, images, cache)
    assert torch.equal(again, first)
    assert f"embeddings read from {cache}" in [record.getMessage() for record in caplog.records]
    fewer = encode_all(other, images[:2], cache)  # a cache of another image count is recomputed
    assert not torch.equal(fewer, first[:2]) and torch.equal(torch.load(cache, weights_only=True), fewer)
    assert torch.equal(encode_all(model, images), first)  # no cache: computed, nothing read or written


def constant_head(channels: int, logit: float) -> LungMapHead:
    """A lung-map head whose logit is ``logit`` at every cell (its last layer's weights zeroed)."""
    head = LungMapHead(channels=channels, width=4).eval()
    with torch.no_grad():
        head.net[-1].weight.zero_()
        head.net[-1].bias.fill_(logit)
    return head


def test_the_heads_logits_times_the_weight_join_the_decoders_after_refinement(images):
    """A head whose logit is -1.5 everywhere, fused at weight 2, lowers every final logit by exactly 3;
    the boxes, refined on the decoder's own masks, are the unfused prompt's."""
    model = tiny_sam(seed=0)
    embeddings = encode_all(model, images).float()
    head = constant_head(embeddings.shape[1], -1.5)
    alone = AutoPrompt(prior=PRIOR, head=head, start="prior", steps=2, fuse=0.0)
    with torch.no_grad():
        base_logits, base_boxes = alone(model, embeddings)
        fused_logits, fused_boxes = alone.with_options(fuse=2.0)(model, embeddings)
    assert torch.equal(fused_boxes, base_boxes)
    torch.testing.assert_close(fused_logits, base_logits - 3.0)


def test_where_the_head_sees_no_lung_the_fused_mask_has_none_and_where_it_sees_lung_all_is_lung(images):
    model = tiny_sam(seed=0)
    embeddings = encode_all(model, images).float()
    with torch.no_grad():
        for logit, expected in ((-1000.0, False), (1000.0, True)):
            auto = AutoPrompt(prior=PRIOR, head=constant_head(embeddings.shape[1], logit), fuse=1.0)
            logits, _ = auto(model, embeddings)
            assert ((logits > 0) == expected).all()


@pytest.mark.parametrize("weight", [-0.5, float("nan")])
def test_a_negative_or_missing_fusion_weight_is_a_config_error(weight):
    with pytest.raises(ConfigError, match=r"^finetune\.head_fusion: .* is not a weight >= 0\.$"):
        AutoPrompt(prior=PRIOR, start="prior", fuse=weight)


def test_the_head_start_is_the_heads_box_not_the_prior_box():
    """A head that sees lung everywhere boxes the whole input (0 to 199 at 200 pixels), where the prior's
    box is (20, 40, 180, 160)."""
    embeddings = torch.zeros(2, 8, 4, 4)
    auto = AutoPrompt(prior=PRIOR, head=constant_head(8, 5.0), start="head", margin=0.0)
    boxes = auto.start_boxes(embeddings, 200)
    assert torch.equal(boxes, torch.tensor([[0.0, 0.0, 199.0, 199.0]] * 2))
    assert not torch.equal(auto.with_options(start="prior").start_boxes(embeddings, 200), boxes)
