"""Classifiers: backbones by name, masks applied on the fly, the uint8 cache, training on a learnable task."""

from __future__ import annotations

import hashlib
import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
import torchvision

from cxrmask.classify.backbones import build_backbone
from cxrmask.classify.cache import _Decode, build_cache, image_index, load_cache
from cxrmask.classify.train import (
    SplitData,
    apply_mask,
    augment,
    gather,
    macro_auroc,
    predict,
    split_data,
    split_rows,
    train_classifier,
)
from cxrmask.config import ClassifierSettings, TrainSettings, parse
from cxrmask.errors import ConfigError, InputError
from cxrmask.imageio import read_grey, read_mask, write_png
from cxrmask.metrics import auroc
from cxrmask.resume import resume_path
from cxrmask.segment.preprocess import resize_grey, resize_mask
from cxrmask.stages.cache_images import cache_images
from cxrmask.stages.cache_masks import cache_masks
from cxrmask.stages.train_classifier import train_classifier as train_cell
from cxrmask.vocabulary import NO_FINDING

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CPU = torch.device("cpu")
LABELS = ["Mass", "Nodule", "Pneumonia", "Edema", "Fibrosis"]
SIZE, PATCH = 64, 14
CELLS = [(0, 0), (0, 1), (0, 2), (1, 0), (1, 2)]  # (row, column) of each label's region in a 2 x 3 grid


def first_conv(model: torch.nn.Module) -> torch.nn.Conv2d:
    return next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))


# ---------------------------------------------------------------- backbones


def test_a_timm_backbone_takes_one_channel_and_gives_k_logits():
    torch.manual_seed(0)
    model = build_backbone("resnet10t", pretrained=False, num_classes=3).eval()
    assert first_conv(model).in_channels == 1
    assert model(torch.rand(2, 1, SIZE, SIZE)).shape == (2, 3)
    assert type(build_backbone("timm:resnet10t", False, 3)) is type(model)


def test_a_torchvision_backbone_gets_a_summed_grey_stem_and_a_new_head():
    torch.manual_seed(0)
    stock = torchvision.models.resnet18()
    torch.manual_seed(0)
    model = build_backbone("torchvision:resnet18", pretrained=False, num_classes=4)
    assert model.conv1.in_channels == 1 and model.conv1.out_channels == 64
    torch.testing.assert_close(model.conv1.weight, stock.conv1.weight.sum(dim=1, keepdim=True))
    assert (model.fc.in_features, model.fc.out_features) == (512, 4)
    # summing the stem's weights makes a grey image mean what it meant to the RGB model
    model.fc, stock.fc = torch.nn.Identity(), torch.nn.Identity()
    model.load_state_dict(stock.state_dict() | {"conv1.weight": model.conv1.weight}, strict=True)
    grey = torch.rand(2, 1, SIZE, SIZE)
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(grey), stock.eval()(grey.expand(-1, 3, -1, -1)))


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("resnet_does_not_exist", "timm has no model 'resnet_does_not_exist'"),
        ("timm:resnet_does_not_exist", "timm has no model"),
        ("torchvision:resnet_does_not_exist", "torchvision has no model 'resnet_does_not_exist'"),
        ("keras:resnet50", "prefix must be timm: or torchvision:"),
    ],
)
def test_unknown_backbones_and_prefixes_are_config_errors(name, message):
    with pytest.raises(ConfigError, match=message):
        build_backbone(name, pretrained=False, num_classes=2)


def test_pretrained_torchvision_weights_without_network_are_a_config_error_saying_what_to_do(offline):
    """Nothing cached, so the download is tried: through a proxy where nothing listens, it fails."""
    with pytest.raises(ConfigError, match="ImageNet weights for resnet18 could not be fetched") as caught:
        build_backbone("torchvision:resnet18", pretrained=True, num_classes=2)
    assert "classifier.pretrained: false" in str(caught.value)
    assert "TORCH_HOME" in str(caught.value)


def test_pretrained_timm_weights_without_network_are_a_config_error_saying_what_to_do(offline):
    """Nothing cached and the Hugging Face hub offline: it fails at once, with what to do."""
    with pytest.raises(ConfigError, match="ImageNet weights for resnet10t could not be fetched") as caught:
        build_backbone("resnet10t", pretrained=True, num_classes=2)
    assert "classifier.pretrained: false" in str(caught.value)


# ---------------------------------------------------------------- masks and augmentation


def gradient_image() -> torch.Tensor:
    """(1, 1, S, S) values rising left to right and top to bottom, so any shift of a crop shows."""
    ramp = torch.linspace(0, 1, SIZE)
    return (0.7 * ramp[None, :] + 0.3 * ramp[:, None])[None, None]


def test_zero_mode_blanks_everything_outside_the_mask():
    image = gradient_image() + 0.1
    mask = torch.zeros(1, 1, SIZE, SIZE)
    mask[..., 10:40, 5:30] = 1
    out = apply_mask(image, mask, "zero")
    assert torch.equal(out[mask == 1], image[mask == 1])
    assert (out[mask == 0] == 0).all()
    assert apply_mask(image, None, "zero") is image


def test_crop_mode_maps_the_masks_box_onto_the_whole_output():
    image = gradient_image() + 0.1
    mask = torch.zeros(2, 1, SIZE, SIZE)
    mask[0, :, 16:48, 8:40] = 1  # a rectangle: its box is itself
    mask[1] = 1  # the full-image fallback mask
    out = apply_mask(image.expand(2, -1, -1, -1), mask, "crop")
    assert out.shape == (2, 1, SIZE, SIZE)
    expected = F.interpolate(image[..., 16:48, 8:40], size=(SIZE, SIZE), mode="bilinear", align_corners=False)
    # inside the border every output pixel samples the box only, exactly where a resize would
    torch.testing.assert_close(out[0, :, 1:-1, 1:-1], expected[0, :, 1:-1, 1:-1])
    torch.testing.assert_close(out[1], image[0])  # a full mask leaves the image as it is


def test_crop_mode_keeps_pixels_outside_the_mask_at_zero():
    yy, xx = torch.meshgrid(torch.arange(SIZE), torch.arange(SIZE), indexing="ij")
    disk = (((yy - 32) ** 2 + (xx - 32) ** 2) <= 20**2).float()[None, None]  # box 12..52
    out = apply_mask(torch.ones(1, 1, SIZE, SIZE), disk, "crop")
    # the disk fills its box: corners of the box are outside it, the centre inside
    assert out[0, 0, :3, :3].abs().max() < 1e-6 and out[0, 0, -3:, -3:].abs().max() < 1e-6
    torch.testing.assert_close(out[0, 0, 24:40, 24:40], torch.ones(16, 16))
    # the disk covers the same share of the output as of its 41 x 41 box
    assert float((out > 0.5).float().mean()) == pytest.approx(float(disk.sum()) / 41**2, abs=0.01)


def test_augment_keeps_the_shape_and_is_deterministic_per_generator():
    images = torch.rand(4, 1, SIZE, SIZE)
    first = augment(images, torch.Generator().manual_seed(7))
    again = augment(images, torch.Generator().manual_seed(7))
    other = augment(images, torch.Generator().manual_seed(8))
    assert first.shape == images.shape
    assert torch.equal(first, again)
    assert not torch.equal(first, other)
    assert not torch.equal(first, images)
    # a small affine: most of the picture stays close to where it was
    assert float((first - images).abs().mean()) < float((images - images.flip(-1)).abs().mean())


def quadrant_image() -> torch.Tensor:
    """(1, 1, S, S) with four flat quadrants of different grey, so a flip or a large turn changes them."""
    image = torch.empty(1, 1, SIZE, SIZE)
    half = SIZE // 2
    image[..., :half, :half], image[..., :half, half:] = 1.0, 0.0
    image[..., half:, :half], image[..., half:, half:] = 0.3, 0.7
    return image


def test_augment_never_flips_and_turns_only_a_few_degrees():
    """Anatomy is lateral (heart on the image's right): every augmented image keeps each quadrant's grey.

    The centre of each quadrant lies a quarter of the image from both boundaries; ±7°, ±10 % scale
    and ±5 % shift move a boundary by at most about an eighth of the image there, while a left-right
    or up-down flip, or a turn of tens of degrees, puts another quadrant's grey on it.
    """
    images = quadrant_image().expand(64, -1, -1, -1)
    out = augment(images, torch.Generator().manual_seed(0))
    quarter, eighth = SIZE // 4, SIZE // 8
    for rows, cols in itertools.product(
        (slice(eighth, quarter + eighth), slice(-quarter - eighth, -eighth)), repeat=2
    ):
        expected = images[0, 0, rows, cols].mean()
        observed = out[:, 0, rows, cols].mean(dim=(-1, -2))
        torch.testing.assert_close(observed, expected.expand(len(out)), atol=0.05, rtol=0)


# ---------------------------------------------------------------- settings


def test_settings_leave_out_the_grid_keys_and_reject_unknown_ones():
    config = {
        "backbones": ["resnet50"],
        "masks": ["original"],
        "seeds": [0],
        "epochs": 3,
        "mask_mode": "crop",
    }
    settings = parse(ClassifierSettings, config).train
    assert (settings.epochs, settings.mask_mode, settings.image_size) == (3, "crop", 224)
    with pytest.raises(ConfigError, match=r"classifier\.dropout: unknown key"):
        parse(TrainSettings, {"dropout": 0.2}, where="classifier")
    with pytest.raises(ConfigError, match=r"classifier\.mask_mode: Input should be 'zero' or 'crop'"):
        parse(TrainSettings, {"mask_mode": "blur"}, where="classifier")
    with pytest.raises(
        ConfigError, match=r"no_finding_score: Input should be 'one_minus_max' or 'prod_one_minus'"
    ):
        parse(TrainSettings, {"no_finding_score": "mean"}, where="classifier")


# ---------------------------------------------------------------- the cache


@pytest.fixture
def image_files(tmp_path):
    """Five grey PNGs of different sizes and their masks; the fourth image is truncated."""
    rng = np.random.default_rng(0)
    images, masks = [], []
    for index, (height, width) in enumerate([(90, 120), (64, 64), (200, 150), (80, 80), (100, 100)]):
        images.append(tmp_path / "images" / f"{index:08d}_000.png")
        masks.append(tmp_path / "masks" / images[-1].name)
        write_png(images[-1], rng.integers(0, 256, (height, width), dtype=np.uint8))
        write_png(masks[-1], rng.random((height, width)) < 0.5)
    images[3].write_bytes(images[3].read_bytes()[:60])
    return images, masks


def test_the_cache_holds_every_image_resized_as_uint8(image_files, tmp_path):
    images, masks = image_files
    good = [p for i, p in enumerate(images) if i != 3]
    errors, digests = build_cache(good, 32, tmp_path / "images.npy")
    cache = load_cache(tmp_path / "images.npy")
    assert errors == [""] * 4
    assert digests == [hashlib.sha256(p.read_bytes()).hexdigest() for p in good]
    assert cache.shape == (4, 32, 32) and cache.dtype == np.uint8
    for row, path in zip(cache, good, strict=True):
        assert np.array_equal(row, resize_grey(read_grey(path), 32))
    build_cache(masks, 32, tmp_path / "masks.npy", is_mask=True, num_workers=1)
    mask_cache = load_cache(tmp_path / "masks.npy")
    assert set(np.unique(mask_cache)) == {0, 1}
    for row, path in zip(mask_cache, masks, strict=True):
        assert np.array_equal(row, resize_mask(read_mask(path), 32))


def test_a_corrupt_image_is_marked_with_skip(image_files, tmp_path):
    images, _ = image_files
    errors, digests = build_cache(images, 32, tmp_path / "cache.npy", on_bad="skip")
    assert [bool(e) for e in errors] == [False, False, False, True, False]
    assert images[3].name in errors[3]
    cache = load_cache(tmp_path / "cache.npy")
    assert cache.shape == (5, 32, 32) and not cache[3].any() and cache[4].any()
    index = image_index(pd.DataFrame({"image": [p.name for p in images]}), errors, digests)
    assert index["ok"].tolist() == [True, True, True, False, True]
    assert index["cache_row"].tolist() == [0, 1, 2, 3, 4]
    # the manifest records the digest even of the corrupt file, so a re-download can be checked against it
    assert index["sha256"].tolist() == [hashlib.sha256(p.read_bytes()).hexdigest() for p in images]
    assert index["error"].tolist() == errors and list(index.columns)[-4:] == [
        "cache_row",
        "sha256",
        "ok",
        "error",
    ]


def test_skipped_images_are_logged_one_by_one_and_counted(image_files, tmp_path, caplog):
    images, _ = image_files
    with caplog.at_level("WARNING", logger="cxrmask.classify.cache"):
        errors, _ = build_cache(images, 32, tmp_path / "cache.npy", on_bad="skip")
    messages = [r.getMessage() for r in caplog.records]
    assert f"skipped: {errors[3]}" in messages
    assert "1 of 5 files could not be decoded and are marked in the index" in messages


def test_a_file_that_cannot_be_read_has_no_digest(tmp_path):
    missing = [tmp_path / "gone.png", tmp_path / "also_gone.png"]
    write_png(tmp_path / "fine.png", np.full((8, 8), 7, np.uint8))
    errors, digests = build_cache([*missing, tmp_path / "fine.png"], 8, tmp_path / "c.npy", on_bad="skip")
    assert digests[:2] == ["", ""] and len(digests[2]) == 64
    assert "gone.png: cannot read" in errors[0]
    with pytest.raises(
        InputError, match=r"none of the 2 files could be decoded \(first: .*/gone\.png: cannot"
    ):
        build_cache(missing, 8, tmp_path / "d.npy", on_bad="skip")


def test_a_corrupt_image_fails_with_fail_and_leaves_no_file(image_files, tmp_path):
    images, _ = image_files
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(InputError, match=r"data\.on_bad_image: skip") as caught:
        build_cache(images, 32, out / "cache.npy", on_bad="fail")
    assert images[3].name in str(caught.value)
    assert list(out.iterdir()) == []


def test_a_cache_of_nothing_but_bad_images_is_an_error(image_files, tmp_path):
    images, _ = image_files
    paths = pd.Series([str(images[3]), str(tmp_path / "missing.png")])  # as the stage passes its column
    with pytest.raises(InputError, match="none of the 2 files could be decoded"):
        build_cache(paths, 32, tmp_path / "cache.npy", on_bad="skip")
    assert not (tmp_path / "cache.npy").exists()
    with pytest.raises(ConfigError, match="on_bad_image"):
        build_cache(images, 32, tmp_path / "cache.npy", on_bad="ignore")


def test_the_stages_cache_images_and_row_aligned_masks(image_files, tmp_path):
    images, masks = image_files
    subset = pd.DataFrame({"image": [p.name for p in images], "path": [str(p) for p in images]})
    subset.to_csv(tmp_path / "subset.csv", index=False)
    cache_images(tmp_path / "subset.csv", tmp_path / "images.npy", tmp_path / "index.csv", 32, "skip", 1)
    index = pd.read_csv(tmp_path / "index.csv")
    assert index["ok"].tolist() == [True, True, True, False, True]
    shard_dirs = [tmp_path / "shard0", tmp_path / "shard1"]
    for i, path in enumerate(masks):
        if i != 3:  # no mask for the image that did not decode
            (shard_dirs[i % 2]).mkdir(exist_ok=True)
            (shard_dirs[i % 2] / path.name).write_bytes(path.read_bytes())
    cache_masks(tmp_path / "index.csv", shard_dirs, tmp_path / "masks.npy", 32, 1)
    mask_cache = load_cache(tmp_path / "masks.npy")
    assert mask_cache.shape == (5, 32, 32) and not mask_cache[3].any()
    for i in (0, 1, 2, 4):
        assert np.array_equal(mask_cache[i], resize_mask(read_mask(masks[i]), 32))
    (shard_dirs[0] / masks[2].name).unlink()
    with pytest.raises(InputError, match=f"no mask for 1 images \\(e.g. {masks[2].name}\\)"):
        cache_masks(tmp_path / "index.csv", shard_dirs, tmp_path / "masks2.npy", 32, 1)
    assert not (tmp_path / "masks2.npy").exists()
    (shard_dirs[0] / masks[2].name).write_bytes(b"not a png")  # a mask that is there but cannot be read
    with pytest.raises(InputError, match=f"^1 masks could not be read: .*{masks[2].name}.* Rerun the rules"):
        cache_masks(tmp_path / "index.csv", shard_dirs, tmp_path / "masks3.npy", 32, 1)
    assert not (tmp_path / "masks3.npy").exists()


def test_the_progress_bar_says_what_is_cached_and_at_which_size(image_files, tmp_path, capsys):
    images, masks = image_files
    build_cache(images[:2], 16, tmp_path / "images.npy")
    build_cache(masks[:2], 24, tmp_path / "masks.npy", is_mask=True)
    bars = capsys.readouterr().err
    assert "cache images at 16: 100%" in bars and "cache masks at 24: 100%" in bars
    assert "1/1 [" in bars and "batch/s]" in bars


def test_a_worker_hands_back_uint8_rows_even_for_a_file_it_cannot_decode(image_files, tmp_path):
    """Rows cross from the loader's workers to the writer: float64 would be eight times the traffic."""
    images, masks = image_files
    for paths, is_mask in ((images, False), (masks, True)):
        decode = _Decode([*paths[2:4], tmp_path / "gone.png"], 20, is_mask)
        rows = [decode[i] for i in range(3)]
        assert [row.dtype for _, row, _, _ in rows] == [np.uint8] * 3
        assert [row.shape for _, row, _, _ in rows] == [(20, 20)] * 3
        assert [bool(error) for _, _, error, _ in rows] == [False, not is_mask, True]


def test_a_cache_is_read_memory_mapped_and_read_only(image_files, tmp_path):
    """Every training job of a grid maps the same file: reading it whole would hold one copy per job."""
    images, _ = image_files
    build_cache(images[:3], 16, tmp_path / "images.npy")
    cache = load_cache(tmp_path / "images.npy")
    assert isinstance(cache, np.memmap) and Path(cache.filename) == (tmp_path / "images.npy").resolve()
    with pytest.raises(ValueError, match="read-only"):
        cache[0, 0, 0] = 1


# ---------------------------------------------------------------- training


def synthetic_split(n: int, rng: np.random.Generator) -> SplitData:
    """Noisy 64x64 images; label k adds its own texture in its own region of a 2 x 3 grid."""
    yy, xx = np.mgrid[0:PATCH, 0:PATCH]
    textures = [
        np.full((PATCH, PATCH), 100.0),  # bright
        np.full((PATCH, PATCH), -70.0),  # dark
        90.0 * ((yy // 2 + xx // 2) % 2),  # checks
        90.0 * (yy // 2 % 2),  # horizontal stripes
        90.0 * (xx // 2 % 2),  # vertical stripes
    ]
    images = rng.normal(80, 15, (n, SIZE, SIZE))
    targets = (rng.random((n, len(LABELS))) < 0.3).astype(np.float32)
    targets[rng.random(n) < 0.25] = 0  # No Finding is common, as in the study's subset
    cell_h, cell_w = SIZE // 2, SIZE // 3
    for i, k in zip(*np.nonzero(targets), strict=True):
        row, col = CELLS[k]
        y = row * cell_h + rng.integers(0, cell_h - PATCH)
        x = col * cell_w + rng.integers(0, cell_w - PATCH)
        images[i, y : y + PATCH, x : x + PATCH] += textures[k]
    images = np.clip(images, 0, 255).astype(np.uint8)
    return SplitData(torch.from_numpy(images), None, torch.from_numpy(targets))


def table_for(split: SplitData) -> pd.DataFrame:
    n = len(split.targets)
    normal = (split.targets.numpy().sum(axis=1) == 0).astype(int)
    return pd.DataFrame(
        {"image": [f"{i:08d}_000.png" for i in range(n)], "patient_id": np.arange(n) // 2, NO_FINDING: normal}
    )


@pytest.fixture(scope="module")
def splits() -> dict[str, SplitData]:
    rng = np.random.default_rng(0)
    return {name: synthetic_split(n, rng) for name, n in (("train", 60), ("val", 20), ("test", 20))}


def settings(**overrides) -> TrainSettings:
    values = {
        "image_size": SIZE,
        "pretrained": False,
        "epochs": 4,
        "batch_size": 8,
        "lr": 5e-3,
        "patience": 0,
        "augment": True,
        "amp": False,
        "channels_last": False,
    }
    return TrainSettings(**{**values, **overrides})


def train(splits, seed: int = 0, val: SplitData | None = None, checkpoint=None, on_epoch=None, **overrides):
    seen = []
    result = train_classifier(
        "resnet10t",
        splits["train"],
        val or splits["val"],
        splits["test"],
        table_for(splits["test"]),
        LABELS,
        settings(**overrides),
        CPU,
        seed,
        on_epoch=on_epoch or seen.append,
        checkpoint=checkpoint,
    )
    return result, seen


@pytest.fixture(scope="module")
def trained(splits):
    return train(splits)


def test_training_learns_the_synthetic_findings(trained):
    result, _ = trained
    assert result.summary["test_macro_auroc"] >= 0.75
    assert result.summary["best_val_macro_auroc"] >= 0.75
    losses = result.history["train_loss"].to_numpy()
    assert losses[-1] < losses[0]


def test_the_predictions_table_has_the_stages_format(trained, splits):
    result, _ = trained
    predictions = result.predictions
    columns = ["image", "patient_id"]
    for label in [*LABELS, NO_FINDING]:
        columns += [f"true_{label}", f"score_{label}"]
    assert list(predictions.columns) == columns
    table = table_for(splits["test"])
    assert predictions["image"].tolist() == table["image"].tolist()
    assert predictions["patient_id"].tolist() == table["patient_id"].tolist()
    truth = splits["test"].targets.numpy().astype(int)
    assert np.array_equal(predictions[[f"true_{label}" for label in LABELS]].to_numpy(), truth)
    assert np.array_equal(predictions[f"true_{NO_FINDING}"], table[NO_FINDING])
    scores = predictions[[f"score_{label}" for label in LABELS]].to_numpy()
    assert ((scores > 0) & (scores < 1)).all()
    np.testing.assert_allclose(predictions[f"score_{NO_FINDING}"], 1 - scores.max(axis=1))
    assert macro_auroc(truth, scores) == pytest.approx(result.summary["test_macro_auroc"])
    assert auroc(table[NO_FINDING], predictions[f"score_{NO_FINDING}"]) > 0.75


def test_history_and_summary_describe_the_run(trained):
    result, seen = trained
    history = result.history
    assert history["epoch"].tolist() == [1, 2, 3, 4]
    assert list(history.columns) == [
        "epoch",
        "train_loss",
        "val_loss",
        "val_macro_auroc",
        "seconds",
        "elapsed",
    ]
    assert (history["seconds"] > 0).all() and history["elapsed"].is_monotonic_increasing
    assert seen == history.to_dict("records")
    best = int(history["val_macro_auroc"].idxmax())
    assert result.summary["best_epoch"] == history["epoch"][best]
    assert result.summary["best_val_macro_auroc"] == history["val_macro_auroc"][best]
    assert result.summary["epochs_run"] == 4
    assert result.summary["seconds_to_best"] == history["elapsed"][best]


def test_the_returned_weights_make_the_returned_predictions(trained, splits):
    result, _ = trained
    model = build_backbone("resnet10t", False, len(LABELS))
    model.load_state_dict(result.state)
    probs = predict(model, splits["test"], settings(), CPU)
    np.testing.assert_allclose(
        result.predictions[[f"score_{label}" for label in LABELS]].to_numpy(), probs, rtol=1e-5, atol=1e-6
    )


def test_patience_stops_training_and_keeps_the_best_epoch(splits):
    """With shuffled validation labels the score wanders, so patience must end the run early."""
    rng = np.random.default_rng(1)
    val = splits["val"]
    noise = SplitData(val.images, None, val.targets[torch.from_numpy(rng.permutation(len(val.targets)))])
    result, _ = train(splits, val=noise, epochs=8, patience=1, augment=False)
    epochs_run = result.summary["epochs_run"]
    assert epochs_run < 8 and len(result.history) == epochs_run
    scores = result.history["val_macro_auroc"].tolist()
    assert result.summary["best_epoch"] == epochs_run - 1  # patience 1: the epoch after the best stops it
    assert scores[-1] <= scores[-2] == max(scores)
    assert all(a < b for a, b in itertools.pairwise(scores[:-1]))  # each earlier epoch improved


def test_the_test_set_is_predicted_with_the_best_epochs_weights_not_the_last(splits):
    """On a run whose best epoch is not its last, the returned weights give the best epoch's validation
    score exactly (not the last epoch's) and make the test predictions."""
    rng = np.random.default_rng(1)
    val = splits["val"]
    noise = SplitData(val.images, None, val.targets[torch.from_numpy(rng.permutation(len(val.targets)))])
    result, _ = train(splits, val=noise, epochs=8, patience=1, augment=False)
    history = result.history
    assert result.summary["best_epoch"] < history["epoch"].iloc[-1]
    last_score = history["val_macro_auroc"].iloc[-1]
    assert result.summary["best_val_macro_auroc"] != last_score
    model = build_backbone("resnet10t", False, len(LABELS))
    model.load_state_dict(result.state)
    on_val = macro_auroc(noise.targets.numpy(), predict(model, noise, settings(), CPU))
    assert on_val == pytest.approx(result.summary["best_val_macro_auroc"], abs=1e-12)
    np.testing.assert_allclose(
        result.predictions[[f"score_{label}" for label in LABELS]].to_numpy(),
        predict(model, splits["test"], settings(), CPU),
        rtol=1e-5,
        atol=1e-6,
    )


def test_same_seed_same_predictions_on_cpu(splits):
    first, _ = train(splits, epochs=2)
    again, _ = train(splits, epochs=2)
    other, _ = train(splits, seed=1, epochs=1)
    pd.testing.assert_frame_equal(first.predictions, again.predictions)
    pd.testing.assert_frame_equal(
        first.history.drop(columns=["seconds", "elapsed"]), again.history.drop(columns=["seconds", "elapsed"])
    )
    assert other.history["train_loss"][0] != first.history["train_loss"][0]


class KilledError(Exception):
    """Stands for the job being killed between two epochs."""


def kill_after(epoch: int, seen: list):
    def on_epoch(row):
        seen.append(row)
        if row["epoch"] == epoch:
            raise KilledError

    return on_epoch


def timeless(history: pd.DataFrame) -> pd.DataFrame:
    return history.drop(columns=["seconds", "elapsed"])


@pytest.mark.parametrize("kill_at", [1, 3])
def test_a_killed_run_resumes_from_its_last_epoch_and_ends_as_an_uninterrupted_one(splits, tmp_path, kill_at):
    """Augmentation, shuffling, the one-cycle schedule and AdamW's moments all continue where they stopped,
    so the resumed run's predictions equal the uninterrupted run's exactly."""
    options = {"epochs": 4, "patience": 3, "augment": True}
    whole, _ = train(splits, **options)
    checkpoint = tmp_path / "resume.pt"
    before: list = []
    with pytest.raises(KilledError):
        train(splits, checkpoint=checkpoint, on_epoch=kill_after(kill_at, before), **options)
    assert checkpoint.is_file() and [row["epoch"] for row in before] == list(range(1, kill_at + 1))
    resumed, replayed = train(splits, checkpoint=checkpoint, **options)
    pd.testing.assert_frame_equal(resumed.predictions, whole.predictions)
    pd.testing.assert_frame_equal(timeless(resumed.history), timeless(whole.history))
    assert replayed == resumed.history.to_dict("records")  # the run record sees every epoch once
    assert resumed.summary["best_epoch"] == whole.summary["best_epoch"]
    assert resumed.summary["train_seconds"] >= before[-1]["elapsed"]  # time before the kill counts


def test_a_run_stopped_early_resumes_as_stopped(splits, tmp_path):
    """Early stopping is part of the saved state: a job killed just after patience ran out trains no more."""
    rng = np.random.default_rng(1)
    val = splits["val"]
    noise = SplitData(val.images, None, val.targets[torch.from_numpy(rng.permutation(len(val.targets)))])
    options = {"val": noise, "epochs": 8, "patience": 1, "augment": False}
    whole, _ = train(splits, **options)
    stop = whole.summary["epochs_run"]
    assert stop < 8
    checkpoint = tmp_path / "resume.pt"
    with pytest.raises(KilledError):
        train(splits, checkpoint=checkpoint, on_epoch=kill_after(stop, []), **options)
    resumed, _ = train(splits, checkpoint=checkpoint, **options)
    assert resumed.summary["epochs_run"] == stop
    pd.testing.assert_frame_equal(resumed.predictions, whole.predictions)


def test_a_checkpoint_of_another_configuration_is_not_resumed(splits, tmp_path, caplog):
    checkpoint = tmp_path / "resume.pt"
    with pytest.raises(KilledError):
        train(splits, checkpoint=checkpoint, on_epoch=kill_after(1, []), epochs=2, lr=5e-3)
    fresh, _ = train(splits, epochs=2, lr=1e-3)
    with caplog.at_level("WARNING"):
        other, seen = train(splits, checkpoint=checkpoint, epochs=2, lr=1e-3)
    assert "belongs to another configuration" in caplog.text
    assert [row["epoch"] for row in seen] == [1, 2]
    pd.testing.assert_frame_equal(other.predictions, fresh.predictions)


def test_an_unreadable_checkpoint_starts_training_again(splits, tmp_path, caplog):
    checkpoint = tmp_path / "resume.pt"
    checkpoint.write_bytes(b"truncated")
    with caplog.at_level("WARNING"):
        _, seen = train(splits, checkpoint=checkpoint, epochs=1)
    assert "unreadable" in caplog.text and [row["epoch"] for row in seen] == [1]


def test_a_mask_hides_what_is_outside_it(splits):
    """Masking out Fibrosis' region (zero mode): the model cannot see it, so only that label is lost."""
    mask = torch.ones(SIZE, SIZE, dtype=torch.uint8)
    row, col = CELLS[LABELS.index("Fibrosis")]
    hidden = (slice(row * SIZE // 2, (row + 1) * SIZE // 2), slice(col * SIZE // 3, None))
    mask[hidden] = 0
    masked = {
        name: SplitData(split.images, mask.expand(len(split.targets), -1, -1), split.targets)
        for name, split in splits.items()
    }
    result, _ = train(masked)
    predictions = result.predictions
    per_label = {
        label: auroc(predictions[f"true_{label}"], predictions[f"score_{label}"]) for label in LABELS
    }
    assert per_label["Fibrosis"] < 0.8, per_label
    assert min(v for k, v in per_label.items() if k != "Fibrosis") > 0.85, per_label
    # whatever the hidden region holds, the trained model's predictions stay the same
    model = build_backbone("resnet10t", False, len(LABELS))
    model.load_state_dict(result.state)
    test = masked["test"]
    scrambled = test.images.clone()
    scrambled[(slice(None), *hidden)] = torch.randint(0, 256, scrambled[(slice(None), *hidden)].shape).byte()
    assert not torch.equal(scrambled, test.images)
    np.testing.assert_array_equal(
        predict(model, SplitData(scrambled, test.masks, test.targets), settings(), CPU),
        predict(model, test, settings(), CPU),
    )


def test_split_data_keeps_the_decoded_images_of_one_split(splits):
    images = np.arange(4 * 8 * 8, dtype=np.uint8).reshape(4, 8, 8)
    table = pd.DataFrame(
        {
            "split": ["train", "test", "train", "train"],
            "ok": [True, True, False, True],
            "cache_row": [0, 1, 2, 3],
            "Mass": [1, 0, 1, 0],
            "Nodule": [0, 1, 0, 1],
        }
    )
    data, rows = split_data(images, images % 2, table, ["Mass", "Nodule"], "train")
    assert torch.equal(data.images, torch.from_numpy(images[[0, 3]]))
    assert torch.equal(data.masks, torch.from_numpy(images[[0, 3]] % 2))
    assert data.targets.tolist() == [[1.0, 0.0], [0.0, 1.0]]
    assert rows.index.tolist() == [0, 1]
    with pytest.raises(ConfigError, match="the val split is empty"):
        split_data(images, None, table, ["Mass"], "val")


def test_the_stage_trains_one_cell_from_the_caches(splits, tmp_path):
    """``train_cell`` reads the caches and the index as the cache stages write them; a row that did not
    decode stays out, and every output is written."""
    order = ("train", "val", "test")
    images = np.concatenate([splits[name].images.numpy() for name in order])
    targets = np.concatenate([splits[name].targets.numpy() for name in order]).astype(int)
    n = len(images)
    index = pd.DataFrame(
        {
            "image": [f"{i:08d}_000.png" for i in range(n)],
            "patient_id": np.arange(n),
            "split": [name for name in order for _ in range(len(splits[name].targets))],
            **{label: targets[:, k] for k, label in enumerate(LABELS)},
            NO_FINDING: (targets.sum(axis=1) == 0).astype(int),
            "cache_row": np.arange(n),
            "ok": np.arange(n) != n - 1,  # the last test image did not decode
        }
    )
    # the first three test images double as a shifted test set (as the demo's twins would)
    shifted = index[index["split"] == "test"].head(3).assign(split="shifted")
    shifted["image"] = [name.replace("_000", "_500") for name in shifted["image"]]
    index = pd.concat([index, shifted], ignore_index=True)
    index.to_csv(tmp_path / "index.csv", index=False)
    np.save(tmp_path / "images.npy", images)
    np.save(tmp_path / "masks.npy", np.ones_like(images))
    names = ("pred.csv", "pred_shifted.csv", "history.csv", "summary.json", "model.pth", "run.json")
    outputs = {name: tmp_path / name for name in names}
    summary = train_cell(
        tmp_path / "images.npy",
        tmp_path / "index.csv",
        tmp_path / "masks.npy",
        *outputs.values(),
        architecture="resnet10t",
        mask="tight",
        seed=0,
        labels=LABELS,
        settings=settings(epochs=1),
        device="cpu",
        threads=1,
    )
    assert all(path.is_file() for path in outputs.values())
    assert not resume_path(tmp_path / "model.pth").exists()  # the checkpoint goes once the cell is complete
    predictions = pd.read_csv(outputs["pred.csv"])
    assert len(predictions) == len(splits["test"].targets) - 1
    assert predictions["image"].tolist() == index["image"][index["split"].eq("test") & index["ok"]].tolist()
    # the twins share their test images' cache rows, so the same weights give them the same scores
    twins = pd.read_csv(outputs["pred_shifted.csv"])
    assert twins["image"].tolist() == shifted["image"].tolist()
    scores = [c for c in predictions.columns if c.startswith(("score_", "true_"))]
    np.testing.assert_allclose(twins[scores].to_numpy(), predictions[scores].head(3).to_numpy(), rtol=1e-6)
    assert json.loads(outputs["summary.json"].read_text()) == {
        "backbone": "resnet10t",
        "mask": "tight",
        "seed": 0,
        **summary,
    }
    saved = torch.load(outputs["model.pth"], weights_only=True)
    assert saved["meta"] == {"backbone": "resnet10t", "mask": "tight", "seed": 0, "labels": LABELS}
    build_backbone("resnet10t", False, len(LABELS)).load_state_dict(saved["model"])
    assert (
        json.loads(outputs["run.json"].read_text())["name"]
        == "train_classifier/backbone=resnet10t/mask=tight/seed=0"
    )


def test_every_stage_gathers_the_same_images_for_a_split_whatever_the_cache_order():
    """Images, a condition's masks and saliency's lungs come from one row list: entry k is one image's."""
    rng = np.random.default_rng(3)
    n = 12
    cache_rows = rng.permutation(n)
    table = pd.DataFrame(
        {
            "image": [f"{i:03d}.png" for i in range(n)],
            "cache_row": cache_rows,
            "split": ["test", "train", "test", "val"] * 3,
            "ok": [True] * 5 + [False] + [True] * 6,
            **{label: rng.integers(0, 2, n) for label in LABELS},
        }
    ).sample(frac=1, random_state=4)  # the index file's order is not the cache's
    images = np.stack([np.full((4, 4), row, dtype=np.uint8) for row in range(n)])
    lungs = np.stack([np.full((4, 4), 100 + row, dtype=np.uint8) for row in range(n)])
    data, rows = split_data(images, images, table, LABELS, "test")
    expected = table[(table["split"] == "test") & table["ok"]]
    assert list(rows["image"]) == list(expected["image"])
    assert data.images[:, 0, 0].tolist() == list(expected["cache_row"])
    assert (gather(lungs, rows)[:, 0, 0] - 100).tolist() == data.images[:, 0, 0].tolist()
    assert data.targets.numpy().tolist() == expected[list(LABELS)].to_numpy().tolist()
    with pytest.raises(ConfigError, match="the shifted split is empty"):
        split_rows(table, "shifted")
