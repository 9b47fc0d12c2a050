"""The segmenter interface: real SAM classes, checkpoints in both formats, sizes, per-image decoding."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch
from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam
from tinysam import TINY_ENCODER, tiny_sam, tiny_spec

from cxrmask.config import SegmenterSettings, parse
from cxrmask.errors import ConfigError, InputError
from cxrmask.segment.models import (
    build_segmenter,
    load_segmenter,
    load_state,
    resolve_checkpoint,
    save_segmenter,
    spec_sizes,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

LITE_SHA256 = ("79d8c9dc", "28ce76")


def n_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    state_a, state_b = a.state_dict(), b.state_dict()
    assert state_a.keys() == state_b.keys()
    for key, value in state_a.items():
        assert torch.equal(value, state_b[key]), key


@pytest.fixture(scope="module")
def model():
    return tiny_sam(seed=0).eval()


@pytest.fixture(scope="module")
def lite():
    return load_segmenter(SegmenterSettings(arch="litemedsam", image_size=256).spec, "bundled").eval()


def test_the_tiny_sam_is_segment_anythings_own_vit(model):
    assert isinstance(model.image_encoder, ImageEncoderViT)
    assert isinstance(model.prompt_encoder, PromptEncoder)
    assert isinstance(model.mask_decoder, MaskDecoder)
    assert model.image_encoder.patch_embed.proj.out_channels == TINY_ENCODER["embed_dim"]
    assert len(model.image_encoder.blocks) == TINY_ENCODER["depth"]
    # window attention in block 0, global attention in block 1, as the spec asks
    assert [block.window_size for block in model.image_encoder.blocks] == [14, 0]
    assert model.arch == tiny_spec()


@pytest.mark.parametrize("image_size", [256, 128])
def test_input_and_mask_sizes_match_the_real_output_shapes(image_size):
    spec = tiny_spec(image_size)
    segmenter = tiny_sam(seed=0, image_size=image_size).eval()
    assert (segmenter.input_size, segmenter.mask_size) == spec_sizes(spec) == (image_size, image_size // 4)
    with torch.no_grad():
        embeddings = segmenter.encode(torch.rand(2, 3, image_size, image_size))
        logits = segmenter.decode(embeddings, torch.tensor([[4.0, 8.0, image_size - 9, image_size - 5]] * 2))
    assert embeddings.shape == (2, 256, image_size // 16, image_size // 16)
    assert logits.shape == (2, 1, segmenter.mask_size, segmenter.mask_size)


def test_a_size_that_is_not_a_multiple_of_the_patch_is_a_config_error():
    with pytest.raises(ConfigError, match="multiple of the ViT patch size"):
        build_segmenter({**tiny_spec(), "image_size": 200})


def test_decode_keeps_each_image_with_its_own_boxes(model):
    """B images x K boxes give (B, K, m, m), and image i's masks depend on image i's inputs only.

    ``segment_anything``'s decoder repeats every image embedding for every
    prompt in the call, so it cannot pair B images with their B boxes; this
    checks that ours does, and that no output of one image sees another.
    """
    torch.manual_seed(1)
    embeddings = model.encode(torch.rand(3, 3, 256, 256)).detach()
    boxes = torch.tensor(
        [
            [[20.0, 30, 120, 220], [130, 30, 235, 225]],
            [[10.0, 10, 245, 245], [60, 60, 190, 190]],
            [[40.0, 50, 110, 200], [140, 40, 220, 210]],
        ]
    )
    with torch.no_grad():
        sparse, dense = model.prompt_encoder(points=None, boxes=boxes[:, 0], masks=None)
        with pytest.raises(RuntimeError, match="must match"):  # the stock decoder, one box per image
            model.mask_decoder(embeddings, model.prompt_encoder.get_dense_pe(), sparse, dense, False)
        logits = model.decode(embeddings, boxes)
        assert logits.shape == (3, 2, 64, 64)
        for i in range(3):
            alone = model.decode(embeddings[i : i + 1], boxes[i : i + 1])
            torch.testing.assert_close(logits[i], alone[0], rtol=1e-4, atol=1e-4)
        other_image = embeddings.clone()
        other_image[1] = torch.randn_like(other_image[1])
        changed = model.decode(other_image, boxes)
        other_boxes = boxes.clone()
        other_boxes[2] = torch.tensor([[0.0, 0, 60, 60], [190, 190, 255, 255]])
        moved = model.decode(embeddings, other_boxes)
    torch.testing.assert_close(changed[[0, 2]], logits[[0, 2]], rtol=1e-4, atol=1e-4)
    assert (changed[1] - logits[1]).abs().max() > 1e-2
    torch.testing.assert_close(moved[:2], logits[:2], rtol=1e-4, atol=1e-4)
    assert (moved[2] - logits[2]).abs().max() > 1e-2
    # the two boxes of one image give two different masks, not one repeated
    assert (logits[:, 0] - logits[:, 1]).abs().amax(dim=(1, 2)).min() > 1e-2


def test_one_box_per_image_may_be_given_as_a_2d_tensor(model):
    embeddings = model.encode(torch.rand(2, 3, 256, 256)).detach()
    boxes = torch.tensor([[20.0, 30, 200, 220], [40, 10, 230, 240]])
    with torch.no_grad():
        torch.testing.assert_close(model.decode(embeddings, boxes), model.decode(embeddings, boxes[:, None]))


def test_own_checkpoint_round_trip(model, tmp_path):
    path = tmp_path / "finetuned.pth"
    save_segmenter(model, path, {"summary": {"best_epoch": 3}})
    assert_same_weights(load_segmenter(tiny_spec(), path), model)
    _, meta = load_state(path)
    assert meta == {"arch": tiny_spec(), "summary": {"best_epoch": 3}}
    assert [p.name for p in tmp_path.iterdir()] == ["finetuned.pth"]


def test_bare_state_dict_in_medsams_format_loads(model, tmp_path):
    """``medsam_vit_b.pth`` is a bare state dict of ``segment_anything.Sam`` (some add pixel buffers)."""
    sam = Sam(model.image_encoder, model.prompt_encoder, model.mask_decoder)
    state = sam.state_dict()
    torch.save(state, tmp_path / "medsam_like.pth")
    assert_same_weights(load_segmenter(tiny_spec(), tmp_path / "medsam_like.pth"), model)
    torch.save({**state, "pixel_mean": sam.pixel_mean, "pixel_std": sam.pixel_std}, tmp_path / "buffers.pth")
    assert_same_weights(load_segmenter(tiny_spec(), tmp_path / "buffers.pth"), model)
    torch.save({"state_dict": model.state_dict()}, tmp_path / "wrapped.pth")
    assert_same_weights(load_segmenter(tiny_spec(), tmp_path / "wrapped.pth"), model)


def test_loaded_weights_give_the_same_masks(model, tmp_path):
    save_segmenter(model, tmp_path / "m.pth", {})
    loaded = load_segmenter(tiny_spec(), tmp_path / "m.pth").eval()
    images = torch.rand(1, 3, 256, 256)
    box = torch.tensor([[30.0, 30, 220, 220]])
    with torch.no_grad():
        torch.testing.assert_close(loaded(images, box), model(images, box))


def test_no_checkpoint_gives_random_weights_that_follow_the_seed():
    assert_same_weights(tiny_sam(seed=3), tiny_sam(seed=3))
    torch.manual_seed(4)
    other = load_segmenter(tiny_spec(), None)
    assert not torch.equal(
        other.mask_decoder.iou_token.weight, tiny_sam(seed=3).mask_decoder.iou_token.weight
    )


@pytest.mark.parametrize(
    ("encoder", "image_size"),
    [
        ({**TINY_ENCODER, "depth": 3, "global_attn_indexes": [2]}, 256),  # other keys
        ({**TINY_ENCODER, "embed_dim": 64}, 256),  # same keys, other widths
        (TINY_ENCODER, 512),  # same keys, another image size (positional embeddings)
    ],
    ids=["depth", "width", "image_size"],
)
def test_a_checkpoint_of_another_shape_is_an_input_error_naming_the_fix(tmp_path, encoder, image_size):
    torch.manual_seed(0)
    other = build_segmenter(SegmenterSettings(image_size=image_size, encoder=encoder).spec)
    save_segmenter(other, tmp_path / "other.pth", {})
    with pytest.raises(InputError, match="does not fit arch vit_b") as caught:
        load_segmenter(tiny_spec(), tmp_path / "other.pth")
    assert "other.pth" in str(caught.value)
    assert "Set segmenter.arch (and segmenter.encoder, segmenter.image_size)" in str(caught.value)


def test_litemedsam_weights_do_not_fit_a_vit(tmp_path):
    with pytest.raises(InputError, match=r"Set segmenter\.arch"):
        load_segmenter(tiny_spec(), resolve_checkpoint("bundled", "litemedsam"))


def test_a_missing_checkpoint_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="checkpoint not found") as caught:
        load_segmenter(tiny_spec(), tmp_path / "absent.pth")
    assert "absent.pth" in str(caught.value)


def test_corrupt_checkpoints_are_input_errors(model, tmp_path):
    save_segmenter(model, tmp_path / "good.pth", {})
    data = (tmp_path / "good.pth").read_bytes()
    (tmp_path / "truncated.pth").write_bytes(data[: len(data) // 2])
    (tmp_path / "html.pth").write_text("<html><body>Google Drive: virus scan warning</body></html>")
    torch.save(torch.zeros(3), tmp_path / "tensor.pth")
    for name in ("truncated.pth", "html.pth"):
        with pytest.raises(InputError, match="cannot load the checkpoint") as caught:
            load_segmenter(tiny_spec(), tmp_path / name)
        assert name in str(caught.value)
        assert "download it again" in str(caught.value)
    with pytest.raises(InputError, match="not a state dict"):
        load_segmenter(tiny_spec(), tmp_path / "tensor.pth")


def test_a_pickled_object_is_refused_not_executed(tmp_path):
    """``weights_only`` loading: a checkpoint that would run code on unpickling is an input error."""
    torch.save({"model": Path("x")}, tmp_path / "pickled.pth")
    with pytest.raises(InputError, match="cannot load the checkpoint"):
        load_state(tmp_path / "pickled.pth")


def test_bundled_weights_exist_only_for_litemedsam():
    with pytest.raises(ConfigError, match="only for arch litemedsam"):
        load_segmenter(tiny_spec(), "bundled")
    with pytest.raises(ConfigError, match="only for arch litemedsam"):
        resolve_checkpoint("bundled", "vit_b")
    assert resolve_checkpoint(None, "vit_b") is None
    assert resolve_checkpoint("weights/medsam_vit_b.pth", "vit_b") == Path("weights/medsam_vit_b.pth")


@pytest.mark.parametrize(
    ("arch", "image_size", "encoder", "message"),
    [
        ("litemedsam", 256, {"depth": 2}, "fixed shape"),
        ("litemedsam", 512, {}, "takes 256"),
        ("vit_x", 1024, {}, "Input should be 'vit_b', 'vit_l', 'vit_h' or 'litemedsam'"),
        ("vit_b", 1024, {"patch_size": 8}, r"segmenter.encoder.patch_size: unknown key"),
    ],
)
def test_bad_arch_specs_are_config_errors(arch, image_size, encoder, message):
    with pytest.raises(ConfigError, match=message):
        parse(
            SegmenterSettings, {"arch": arch, "image_size": image_size, "encoder": encoder}, where="segmenter"
        )


def test_litemedsam_loads_its_bundled_weights_strictly(lite):
    path = resolve_checkpoint("bundled", "litemedsam")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert digest.startswith(LITE_SHA256[0]) and digest.endswith(LITE_SHA256[1])
    state, _ = load_state(path)
    model_state = lite.state_dict()
    assert model_state.keys() == state.keys()
    for key, value in state.items():
        assert torch.equal(model_state[key], value), key
    assert 9.7e6 < n_parameters(lite) < 9.9e6


def test_litemedsam_sizes_match_its_real_output_shapes(lite):
    spec = SegmenterSettings(arch="litemedsam", image_size=256).spec
    assert (lite.input_size, lite.mask_size) == spec_sizes(spec) == (256, 256)
    with torch.no_grad():
        embeddings = lite.encode(torch.rand(1, 3, 256, 256))
        logits = lite.decode(embeddings, torch.tensor([[[30.0, 30, 220, 220], [10, 10, 120, 240]]]))
    assert embeddings.shape == (1, 256, 64, 64)
    assert logits.shape == (1, 2, 256, 256)


@pytest.mark.parametrize("name", ["model", "lite"])
def test_the_prompt_encoder_is_frozen_and_the_rest_trains(name, request):
    segmenter = request.getfixturevalue(name)
    assert not any(p.requires_grad for p in segmenter.prompt_encoder.parameters())
    assert all(p.requires_grad for p in segmenter.mask_decoder.parameters())
    assert all(p.requires_grad for p in segmenter.image_encoder.parameters())


def test_no_gradient_reaches_the_prompt_encoder():
    trained = tiny_sam(seed=0)
    trained(torch.rand(1, 3, 256, 256), torch.tensor([[20.0, 20, 200, 230]])).sum().backward()
    assert all(p.grad is None for p in trained.prompt_encoder.parameters())
    assert trained.mask_decoder.output_upscaling[0].weight.grad is not None
    assert trained.image_encoder.patch_embed.proj.weight.grad is not None


def test_the_real_vit_b_preset_has_medsams_size():
    spec = SegmenterSettings().spec
    vit_b = build_segmenter(spec)
    assert 93e6 < n_parameters(vit_b) < 94e6
    assert (vit_b.input_size, vit_b.mask_size) == spec_sizes(spec) == (1024, 256)
    assert vit_b.image_encoder.patch_embed.proj.out_channels == 768
    assert len(vit_b.image_encoder.blocks) == 12
