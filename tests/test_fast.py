"""The fast paths give the reference's numbers: SDPA attention, checkpointing, device preprocessing, bf16."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from numerics import FP32_BOUND, assert_relatively_close, relative_error
from segment_anything.modeling.image_encoder import Attention
from tinysam import TINY_ENCODER, tiny_spec, write_lung_set

from cxrmask.config import BUNDLED, LITE_ARCH, LITE_IMAGE_SIZE, FinetuneSettings, SegmenterSettings
from cxrmask.errors import ConfigError
from cxrmask.segment.dataset import prepare
from cxrmask.segment.fast import SdpaAttention, prepare_for_inference, resolve_compile
from cxrmask.segment.finetune import finetune, segmentation_loss
from cxrmask.segment.models import build_segmenter, load_segmenter
from cxrmask.segment.pairs import find_pairs
from cxrmask.segment.preprocess import resize_grey, to_device_input, to_model_input
from cxrmask.segment.prompts import BoxPrior

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CPU = torch.device("cpu")
LITE_SPEC = SegmenterSettings(arch=LITE_ARCH, image_size=LITE_IMAGE_SIZE).spec


def pair(seed: int = 0) -> tuple:
    """The same small SAM with segment_anything's attention (reference) and with SDPA attention.

    SAM initialises the relative-position tables to zero, which would hide a
    wrong bias; they are drawn at random here, in both models alike.
    """
    torch.manual_seed(seed)
    reference = build_segmenter(tiny_spec(), sdpa_attention=False)
    with torch.no_grad():
        for name, parameter in reference.named_parameters():
            if "rel_pos" in name:
                parameter.normal_(0, 0.5)
    fast = build_segmenter(tiny_spec())
    fast.load_state_dict(reference.state_dict())
    return reference, fast


def test_sdpa_attention_replaces_every_block_and_keeps_the_checkpoint_keys():
    reference, fast = pair()
    assert [type(block.attn) for block in reference.image_encoder.blocks] == [Attention] * 2
    assert [type(block.attn) for block in fast.image_encoder.blocks] == [SdpaAttention] * 2
    assert list(fast.state_dict()) == list(reference.state_dict())


def block_errors(ref_block: torch.nn.Module, fast_block: torch.nn.Module) -> dict[str, float]:
    """Relative error of the fast block's output, input gradient and parameter gradients, by name."""
    x = torch.randn(2, 16, 16, TINY_ENCODER["embed_dim"], requires_grad=True)
    x_fast = x.detach().clone().requires_grad_(True)
    out_ref, out_fast = ref_block(x), fast_block(x_fast)
    out_ref.square().sum().backward()
    out_fast.square().sum().backward()
    errors = {"output": relative_error(out_fast, out_ref), "input.grad": relative_error(x_fast.grad, x.grad)}
    for (name, p_ref), (_, p_fast) in zip(
        ref_block.attn.named_parameters(), fast_block.attn.named_parameters(), strict=True
    ):
        missing = p_fast.grad is None  # a term the fast path leaves out gets no gradient at all
        errors[f"{name}.grad"] = float("inf") if missing else relative_error(p_fast.grad, p_ref.grad)
    return errors


@pytest.mark.parametrize("block_index", [0, 1], ids=["windowed", "global"])
def test_sdpa_attention_gives_the_reference_outputs_and_gradients(block_index):
    reference, fast = pair()
    ref_block = reference.image_encoder.blocks[block_index]
    assert ref_block.window_size == (14 if block_index == 0 else 0)
    errors = block_errors(ref_block, fast.image_encoder.blocks[block_index])
    assert len(errors) == 2 + 6  # output, input and every attention parameter (qkv, proj, both tables)
    worst = max(errors, key=errors.get)
    assert errors[worst] <= FP32_BOUND, f"{worst}: relative error {errors[worst]:.2e}"


def _scale_off(attn: SdpaAttention) -> None:
    attn.scale *= 1.01


def _rel_pos_dropped(attn: SdpaAttention) -> None:
    attn.use_rel_pos = False


def _rel_pos_transposed(attn: SdpaAttention) -> None:
    with torch.no_grad():
        table = attn.rel_pos_h.clone()
        attn.rel_pos_h.copy_(attn.rel_pos_w)
        attn.rel_pos_w.copy_(table)


def _rel_pos_on_scaled_query(attn: SdpaAttention) -> None:
    bias = attn._rel_pos_bias
    attn._rel_pos_bias = lambda q, height, width: bias(q * attn.scale, height, width)


@pytest.mark.parametrize("block_index", [0, 1], ids=["windowed", "global"])
@pytest.mark.parametrize(
    "mistake", [_scale_off, _rel_pos_dropped, _rel_pos_transposed, _rel_pos_on_scaled_query]
)
def test_a_planted_mistake_in_the_fast_attention_exceeds_the_bound_many_times(block_index, mistake):
    """The bound is meaningful: each mistake moves some output or gradient by over 100 times it."""
    reference, fast = pair()
    fast_block = fast.image_encoder.blocks[block_index]
    mistake(fast_block.attn)
    errors = block_errors(reference.image_encoder.blocks[block_index], fast_block)
    assert max(errors.values()) > 100 * FP32_BOUND, errors


def test_a_grid_the_relative_position_table_was_not_built_for_is_an_error():
    _, fast = pair()
    with pytest.raises(ValueError, match="built for another image or window size"):
        fast.image_encoder.blocks[1].attn(torch.randn(1, 12, 12, TINY_ENCODER["embed_dim"]))


def test_sdpa_attention_gives_the_reference_embeddings_and_masks():
    reference, fast = pair(seed=3)
    images = torch.rand(2, 3, 256, 256)
    boxes = torch.tensor([[20.0, 30, 200, 220], [40, 10, 230, 240]])
    with torch.no_grad():
        assert_relatively_close(fast.encode(images), reference.encode(images), name="embeddings")
        torch.testing.assert_close(fast(images, boxes), reference(images, boxes), rtol=1e-4, atol=1e-4)


def test_checkpointing_recomputes_the_blocks_and_gives_the_same_gradients():
    torch.manual_seed(0)
    plain = build_segmenter(tiny_spec())
    checkpointed = copy.deepcopy(plain)
    checkpointed.checkpointing = True
    images, boxes = torch.rand(2, 3, 256, 256), torch.tensor([[20.0, 30, 200, 220], [40, 10, 230, 240]])
    target = (torch.rand(2, 1, 64, 64) > 0.5).float()
    calls = {"plain": 0, "checkpointed": 0}
    for key, model in (("plain", plain), ("checkpointed", checkpointed)):
        # a pre-hook: the recomputation stops once it has what the backward pass needs
        model.image_encoder.blocks[0].register_forward_pre_hook(
            lambda *_, key=key: calls.__setitem__(key, calls[key] + 1)
        )
        segmentation_loss(model(images, boxes), target).backward()
    assert calls == {"plain": 1, "checkpointed": 2}  # the block ran again in the backward pass
    grads = dict(plain.named_parameters())
    for name, parameter in checkpointed.named_parameters():
        if parameter.grad is None:
            assert grads[name].grad is None, name
        else:
            assert_relatively_close(parameter.grad, grads[name].grad, name=name)
    with torch.no_grad():  # no backward pass, no checkpointing
        checkpointed.encode(images)
    assert calls["checkpointed"] == 3


def stock_decode(model, embeddings: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """segment_anything's own decoder, one image at a time (it cannot pair B images with B boxes)."""
    outputs = []
    for embedding, image_boxes in zip(embeddings, boxes, strict=True):
        sparse, dense = model.prompt_encoder(points=None, boxes=image_boxes, masks=None)
        logits, _ = model.mask_decoder(
            embedding[None], model.prompt_encoder.get_dense_pe(), sparse, dense, False
        )
        outputs.append(logits[:, 0])
    return torch.stack(outputs)


@pytest.mark.parametrize("arch", ["tiny_vit_b", "litemedsam"])
@pytest.mark.parametrize("per_image", [1, 2])
def test_batched_decoding_gives_the_stock_decoders_masks(arch, per_image):
    torch.manual_seed(0)
    if arch == "litemedsam":
        model = load_segmenter(LITE_SPEC, BUNDLED).eval()
        embeddings = torch.randn(3, 256, 64, 64)
    else:
        model = build_segmenter(tiny_spec()).eval()
        embeddings = torch.randn(3, 256, 16, 16)
    corners = torch.rand(3, per_image, 2) * 120
    boxes = torch.cat([corners, corners + 40 + torch.rand(3, per_image, 2) * 90], dim=-1)
    with torch.no_grad():
        batched, stock = model.decode(embeddings, boxes), stock_decode(model, embeddings, boxes)
    assert batched.shape == stock.shape == (3, per_image, model.mask_size, model.mask_size)
    torch.testing.assert_close(batched, stock, rtol=1e-4, atol=1e-4)
    assert (stock[0] - stock[1]).abs().max() > 1e-2  # the images' masks differ, so a mix-up would show


@pytest.fixture(scope="module")
def lungs(tmp_path_factory):
    root = tmp_path_factory.mktemp("lungs")
    write_lung_set(root, [(256, 256)] * 6, seed=1)
    data = prepare(find_pairs(root, "images/{id}.png", ["masks/{id}.png"]), 256, 64, 0.34, seed=0)
    return data, BoxPrior.fit(list(data.subset("train").masks), margin=0.03)


def test_finetuning_with_checkpointing_follows_the_same_history(lungs):
    data, prior = lungs
    histories = []
    for checkpointing in (False, True):
        torch.manual_seed(0)
        model = build_segmenter(tiny_spec())
        settings = FinetuneSettings(epochs=2, batch_size=2, lr=1e-3, amp=False, checkpointing=checkpointing)
        result = finetune(model, data, prior, settings, CPU, seed=0)
        histories.append([(row["train_loss"], row["val_dice"]) for row in result.history[1:]])
    np.testing.assert_allclose(histories[1], histories[0], rtol=1e-4)


@pytest.mark.parametrize(
    "spec, mode", [(LITE_SPEC, "full"), (tiny_spec(), "decoder")], ids=["litemedsam", "decoder"]
)
def test_checkpointing_outside_full_vit_finetuning_is_a_config_error(lungs, spec, mode):
    data, prior = lungs
    model = build_segmenter(spec)
    with pytest.raises(ConfigError, match=r"finetune\.checkpointing"):
        finetune(model, data, prior, FinetuneSettings(mode=mode, epochs=0, checkpointing=True), CPU)


def test_device_preprocessing_gives_the_host_paths_inputs():
    """Images of several sizes (one already at the input size, one flat) as the host path gives them."""
    rng = np.random.default_rng(0)
    images = [
        rng.integers(0, 256, (300, 220), dtype=np.uint8),
        rng.integers(40, 90, (256, 256), dtype=np.uint8),
        np.full((100, 130), 77, dtype=np.uint8),
        rng.integers(0, 256, (1024, 1024), dtype=np.uint8),
    ]
    host = to_model_input(torch.stack([torch.from_numpy(resize_grey(image, 256)) for image in images]))
    device = to_device_input([torch.from_numpy(image) for image in images], 256, CPU)
    assert device.shape == host.shape == (4, 3, 256, 256)
    torch.testing.assert_close(device, host, rtol=0, atol=0)
    assert device[1].min() == 0 and device[1].max() == 1  # min-max per image, not per batch
    assert device[2].abs().max() == 0  # a flat image is all zero, not NaN


def test_an_image_at_the_input_size_is_not_resized():
    image = np.random.default_rng(1).integers(0, 256, (64, 64), dtype=np.uint8)
    resized = torch.nn.functional.interpolate(
        torch.from_numpy(image).float()[None, None], size=(64, 64), mode="bilinear", antialias=True
    )
    np.testing.assert_array_equal(resize_grey(image, 64), image)
    np.testing.assert_array_equal(resized[0, 0].numpy(), image)  # so skipping it changes nothing


def test_bf16_encoder_weights_keep_the_logits():
    """An encoder cast to bf16 takes fp32 images and feeds the fp32 decoder (CPU bf16, same plumbing)."""
    reference, _ = pair(seed=5)
    fast = copy.deepcopy(reference)
    fast.image_encoder.to(torch.bfloat16)
    images = torch.rand(2, 3, 256, 256)
    boxes = torch.tensor([[20.0, 30, 200, 220], [40, 10, 230, 240]])
    with torch.no_grad():
        embeddings = fast.encode(images)
        assert embeddings.dtype == torch.bfloat16
        expected, got = reference(images, boxes), fast.decode(embeddings, boxes)
    assert got.dtype == torch.float32
    assert (got - expected).abs().max() < 0.05 * expected.abs().max()


def test_inference_preparation_on_a_cpu_keeps_fp32_and_compiles_only_when_asked():
    model = build_segmenter(tiny_spec())
    assert prepare_for_inference(model, CPU, bf16_weights=True, compile_choice=None) is False
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    assert not model.training
    assert resolve_compile(None, torch.device("cuda")) is True
    assert resolve_compile(False, torch.device("cuda")) is False
    assert resolve_compile(True, CPU) is True
