"""cxrmask.segment.preprocess: MedSAM's input convention (not SAM's), box scaling, mask resizing."""

from __future__ import annotations

import numpy as np
import torch
from skimage.measure import label

from cxrmask.segment.preprocess import resize_grey, resize_mask, scale_boxes, to_model_input


def test_to_model_input_min_max_per_image_three_channels() -> None:
    low = torch.full((8, 8), 50, dtype=torch.uint8)
    low[0, 0], low[7, 7], low[3, 4] = 40, 60, 45
    high = torch.arange(64, dtype=torch.uint8).reshape(8, 8) * 4
    x = to_model_input(torch.stack([low, high]))
    assert x.shape == (2, 3, 8, 8) and x.dtype == torch.float32
    assert x.is_contiguous()
    for image in x:
        assert image.min() == 0 and image.max() == 1
        assert torch.equal(image[0], image[1]) and torch.equal(image[1], image[2])
    # Each image by its own range, nothing else: no ImageNet mean/std, no padding.
    assert x[0, 0, 3, 4].item() == (45 - 40) / (60 - 40)
    assert x[0, 0, 1, 1].item() == 0.5
    assert torch.allclose(x[1, 0], high.float() / 252)


def test_to_model_input_is_not_imagenet_normalised() -> None:
    """SAM's normalisation would give black (0 - mean) / std < 0 and per-channel values; MedSAM's does not."""
    x = to_model_input(torch.tensor([[[0, 255], [255, 0]]], dtype=torch.uint8))
    assert x[0, :, 0, 0].tolist() == [0.0, 0.0, 0.0]
    assert x[0, :, 0, 1].tolist() == [1.0, 1.0, 1.0]


def test_to_model_input_constant_image_is_zero_not_nan() -> None:
    x = to_model_input(torch.full((1, 4, 4), 77, dtype=torch.uint8))
    assert torch.isfinite(x).all() and not x.any()


def test_resize_grey_stays_uint8_and_keeps_levels() -> None:
    image = np.zeros((40, 60), dtype=np.uint8)
    image[:, 30:] = 200
    out = resize_grey(image, 32)
    assert out.shape == (32, 32) and out.dtype == np.uint8
    assert out[:, :14].max() == 0 and out[:, 18:].min() == 200
    assert np.array_equal(resize_grey(np.full((50, 70), 123, np.uint8), 64), np.full((64, 64), 123))


def test_scale_boxes_maps_a_non_square_image_to_the_square_input() -> None:
    boxes = np.array([[0, 0, 511, 255], [100, 50, 200, 150]])
    scaled = scale_boxes(boxes, height=256, width=512, size=1024)
    assert scaled.dtype == np.float32
    assert np.allclose(scaled, [[0, 0, 1022, 1020], [200, 200, 400, 600]])
    assert scale_boxes(np.array([10, 20, 30, 40]), 64, 64, 64).tolist() == [10, 20, 30, 40]


def test_resize_mask_down_by_area_preserves_area_and_stays_boolean() -> None:
    mask = np.zeros((1024, 1024), dtype=bool)
    ys, xs = np.mgrid[:1024, :1024]
    mask[(ys - 500) ** 2 / 300**2 + (xs - 300) ** 2 / 150**2 <= 1] = True
    small = resize_mask(mask, 256)
    assert small.shape == (256, 256) and small.dtype == bool
    assert abs(small.sum() * 16 - mask.sum()) / mask.sum() < 0.01


def test_resize_mask_keeps_a_thin_band_whole_and_drops_slivers_without_specks() -> None:
    """A band as wide as one output pixel stays one piece; a sliver of a quarter pixel leaves nothing."""
    ys, xs = np.mgrid[:1024, :1024]
    distance = np.abs(ys - 0.7 * xs - 100)
    for width in (4, 8, 16):
        small = resize_mask(distance <= width / 2, 256)
        assert label(small, connectivity=2).max() == 1, width
        assert abs(small.sum() - (distance <= width / 2).sum() / 16) / small.sum() < 0.1
    assert not resize_mask(distance <= 0.5, 256).any()


def test_resize_mask_up_and_back_down_is_lossless() -> None:
    mask = np.random.default_rng(0).random((64, 64)) > 0.5
    big = resize_mask(mask, 256)
    assert big.shape == (256, 256)
    assert np.array_equal(big[::4, ::4], mask)
    assert np.array_equal(resize_mask(big, 64), mask)


def test_resize_mask_of_a_non_square_mask() -> None:
    mask = np.zeros((300, 200), dtype=bool)
    mask[60:240, 40:160] = True
    out = resize_mask(mask, 100)
    assert out.shape == (100, 100)
    assert out[20:80, 20:80].all() and not out[:19].any() and not out[:, 81:].any()


def test_resize_grey_averages_each_output_pixels_own_source_pixels() -> None:
    """A ramp shrunk 4x: inside, output pixel j is the mean of source pixels 4j..4j+3, i.e. 4j + 1.5, rounded
    half to even (pixel centres aligned, ``align_corners=False``); a corner-aligned resize would differ."""
    ramp = np.tile(np.arange(256, dtype=np.uint8), (8, 1))
    out = resize_grey(ramp, 64)[0].astype(int)
    j = np.arange(2, 62)
    assert np.array_equal(out[j], np.round(4 * j + 1.5).astype(int))


def test_resize_grey_low_passes_before_it_shrinks() -> None:
    """Noise shrunk 8x is averaged (antialiased): its spread falls about eightfold; sampling keeps it."""
    noise = np.random.default_rng(0).integers(0, 256, (512, 512), dtype=np.uint8)
    out = resize_grey(noise, 64).astype(float)
    assert out.std() < noise.std() / 5 and abs(out.mean() - noise.mean()) < 1
