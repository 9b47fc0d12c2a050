"""Mask generation: masks at each image's own size, QC rows, the empty-mask policy, shards."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from tinysam import TINY_ENCODER, force_constant_logits, one_lung_per_box, tiny_sam, write_lung_set

from cxrmask.config import (
    FinetuneSettings,
    InferenceSettings,
    LooseSettings,
    SegmenterSettings,
    SegmentSettings,
    parse,
)
from cxrmask.errors import ConfigError, InputError
from cxrmask.imageio import read_grey, read_mask
from cxrmask.segment.autoprompt import AutoPrompt, encode_all
from cxrmask.segment.boxhead import LungMapHead
from cxrmask.segment.bundle import SegmenterBundle
from cxrmask.segment.dataset import prepare
from cxrmask.segment.finetune import finetune
from cxrmask.segment.inference import (
    NO_TRUTH_QC,
    QC_COLUMNS,
    _DeviceMasks,
    _finish,
    _mask_table,
    generate_masks,
    shard,
)
from cxrmask.segment.pairs import find_pairs
from cxrmask.segment.postprocess import clean_mask, dice
from cxrmask.segment.preprocess import resize_grey
from cxrmask.segment.prompts import BoxPrior
from cxrmask.segment.qc import QCReference, certainty
from cxrmask.stages.dilate_masks import dilate_masks
from cxrmask.stages.generate_masks import generate_masks as generate_shard

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CPU = torch.device("cpu")
SIZES = [(260, 300), (512, 512), (320, 200)]  # (height, width)
BASE = InferenceSettings(batch_size=2, num_workers=0, amp=False)
SEGMENTER = SegmenterSettings(image_size=256, encoder=TINY_ENCODER, checkpoint=None)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The small SAM fine-tuned for a few epochs on synthetic lungs, and its box prior.

    Its masks follow the ellipses of each image, so a mask written for the
    wrong image, or at the wrong size or orientation, scores a low Dice.
    """
    root = tmp_path_factory.mktemp("train")
    write_lung_set(root, [(256, 256)] * 8, seed=0)
    data = prepare(find_pairs(root, "images/{id}.png", ["masks/{id}.png"]), 256, 64, 0.25, seed=0)
    prior = BoxPrior.fit(list(data.subset("train").masks), margin=0.03)
    model = tiny_sam(seed=0)
    settings = FinetuneSettings(mode="full", epochs=5, batch_size=4, lr=1e-3, amp=False)
    result = finetune(model, data, prior, settings, CPU)
    assert result.best["val_dice"] > 0.8
    model.load_state_dict(result.state)
    return model.eval(), prior


@pytest.fixture(scope="module")
def lung_in_box():
    """The small SAM fine-tuned to segment the one lung its box holds, and a prior from whole masks.

    Prompted with one lung's box it gives that lung alone, so a mask shows
    which of the per-lung boxes reached the decoder.
    """
    data, wholes = one_lung_per_box(8, 256, 64, seed=0)
    prior = BoxPrior.fit(wholes, margin=0.03)
    model = tiny_sam(seed=0)
    settings = FinetuneSettings(mode="decoder", epochs=20, batch_size=4, lr=1e-3, amp=False)
    result = finetune(model, data, prior, settings, CPU)
    assert result.best["val_dice"] > 0.9
    model.load_state_dict(result.state)
    return model.eval(), prior


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> tuple[list[tuple[str, Path]], Path]:
    """Three images of different sizes and shapes; ground truth for the first two only."""
    root = tmp_path_factory.mktemp("nih")
    keys = write_lung_set(root, SIZES, seed=5)
    (root / "masks" / f"{keys[2]}.png").unlink()
    return [(f"{key}.png", root / "images" / f"{key}.png") for key in keys], root / "masks"


def run(model, items, prior, out_dir, truth_dir=None, qc=None, **overrides) -> pd.DataFrame:
    """Masks with the prior box (an ``auto`` prompt that starts at the prior and does not refine)."""
    prompt = AutoPrompt(prior=prior, start="prior", steps=0)
    settings = parse(InferenceSettings, {**BASE.model_dump(), **overrides}, where="segment")
    return generate_masks(model, items, prompt, out_dir, settings, CPU, truth_dir=truth_dir, qc=qc)


def test_masks_are_written_at_each_images_size_and_follow_its_lungs(trained, images, tmp_path):
    model, prior = trained
    items, truth_dir = images
    qc = run(model, items, prior, tmp_path, truth_dir)
    assert list(qc.columns) == [*QC_COLUMNS, "dice"]
    assert qc["image"].tolist() == [name for name, _ in items]
    assert list(zip(qc["height"], qc["width"], strict=True)) == SIZES
    for row in qc.itertuples():
        with Image.open(tmp_path / row.image) as png:
            assert png.mode == "L"
            assert png.size == (row.width, row.height)
            pixels = np.asarray(png)
        assert set(np.unique(pixels)) <= {0, 255}
        assert row.lung_fraction == pytest.approx((pixels == 255).mean())
        assert 0.1 < row.lung_fraction < 0.6
        assert row.raw_lung_fraction > 0 and not row.fallback
    assert np.isnan(qc["dice"][2])  # no ground truth for the third image
    for row in qc.iloc[:2].itertuples():
        truth = read_mask(truth_dir / row.image)
        assert row.dice == pytest.approx(dice(read_mask(tmp_path / row.image), truth))
        assert row.dice > 0.75


def test_batching_and_worker_processes_do_not_change_the_masks(trained, images, tmp_path):
    model, prior = trained
    items, _ = images
    run(model, items, prior, tmp_path / "one", batch_size=1)
    run(model, items, prior, tmp_path / "workers", batch_size=3, num_workers=2)
    for name, _ in items:
        one, workers = read_mask(tmp_path / "one" / name), read_mask(tmp_path / "workers" / name)
        assert (one != workers).mean() < 1e-3, name


def test_more_masks_than_the_clean_up_window_keep_their_order_and_content(trained, images, tmp_path):
    """Two clean-up threads hold at most eight masks in flight: twelve images pass through the window."""
    model, prior = trained
    items, _ = images
    many = [(f"copy{i}_{name}", path) for i in range(4) for name, path in items]
    qc = run(model, many, prior, tmp_path, batch_size=2, num_workers=2)
    assert qc["image"].tolist() == [name for name, _ in many]
    for i in range(1, 4):
        for name, _ in items:
            assert np.array_equal(
                read_mask(tmp_path / f"copy{i}_{name}"), read_mask(tmp_path / f"copy0_{name}")
            )
    assert qc["height"].tolist() == [h for h, _ in SIZES] * 4


def test_an_unknown_prompt_is_a_config_error(trained, images, tmp_path):
    model, prior = trained
    items, _ = images
    with pytest.raises(ConfigError, match=r"segment\.prompt"):
        run(model, items[:1], prior, tmp_path, prompt="three_boxes")


def test_per_lung_prompting_decodes_both_lungs_boxes(lung_in_box, images, tmp_path):
    """Each half of the mask must follow its own lung: a box left out leaves its lung unsegmented."""
    model, prior = lung_in_box
    items, truth_dir = images
    qc = run(model, items[:2], prior, tmp_path, truth_dir, prompt="per_lung")
    for name, _ in items[:2]:
        mask, truth = read_mask(tmp_path / name), read_mask(truth_dir / name)
        middle = truth.shape[1] // 2
        assert dice(mask[:, :middle], truth[:, :middle]) > 0.85, name
        assert dice(mask[:, middle:], truth[:, middle:]) > 0.85, name
    assert (qc["dice"] > 0.85).all()


def test_an_empty_mask_fails_the_job_by_default_naming_the_image(images, tmp_path):
    items, _ = images
    empty = force_constant_logits(tiny_sam(seed=0), -1.0).eval()
    prior = BoxPrior.fit([np.ones((8, 8), bool)], margin=0.0)
    with pytest.raises(InputError, match=r"segment\.on_empty: full_image") as caught:
        run(empty, items, prior, tmp_path)
    assert items[0][0] in str(caught.value)


def test_full_image_replaces_empty_masks_and_counts_them(images, tmp_path):
    items, truth_dir = images
    empty = force_constant_logits(tiny_sam(seed=0), -1.0).eval()
    prior = BoxPrior.fit([np.ones((8, 8), bool)], margin=0.0)
    qc = run(empty, items, prior, tmp_path, truth_dir, on_empty="full_image", max_empty_fraction=1.0)
    assert qc["fallback"].tolist() == [True, True, True]
    assert (qc["raw_lung_fraction"] == 0).all() and (qc["lung_fraction"] == 1).all()
    for name, path in items:
        mask = read_mask(tmp_path / name)
        assert mask.all() and mask.shape == np.asarray(Image.open(path)).shape
    with pytest.raises(InputError, match=r"3 of 3 masks are empty or below 2% of the image \(limit 50\.0%\)"):
        run(empty, items, prior, tmp_path / "strict", on_empty="full_image", max_empty_fraction=0.5)


def test_masks_below_the_minimum_fraction_fall_back_one_by_one(trained, images, tmp_path):
    model, prior = trained
    items, _ = images
    fractions = run(model, items, prior, tmp_path / "plain")["lung_fraction"].to_numpy()
    assert len(set(fractions)) == 3
    threshold = float(np.sort(fractions)[1])  # the smallest mask falls below it, the others do not
    kwargs = {"on_empty": "full_image", "min_lung_fraction": threshold}
    qc = run(model, items, prior, tmp_path / "fallback", max_empty_fraction=0.5, **kwargs)
    assert qc["fallback"].tolist() == list(fractions < threshold)
    assert qc["fallback"].sum() == 1
    small = qc.loc[qc["fallback"], "image"].item()
    assert read_mask(tmp_path / "fallback" / small).all()
    with pytest.raises(InputError, match="1 of 3 masks"):
        run(model, items, prior, tmp_path / "strict", max_empty_fraction=0.2, **kwargs)


def test_a_full_mask_is_kept_as_it_is(images, tmp_path):
    items, _ = images
    full = force_constant_logits(tiny_sam(seed=0), 1.0).eval()
    prior = BoxPrior.fit([np.ones((8, 8), bool)], margin=0.0)
    qc = run(full, items[:1], prior, tmp_path)
    assert qc["lung_fraction"].item() == 1 and qc["raw_lung_fraction"].item() == 1
    assert not qc["fallback"].item()


def test_an_unknown_empty_mask_policy_is_a_config_error():
    with pytest.raises(ConfigError, match=r"segment\.on_empty: Input should be 'fail' or 'full_image'"):
        parse(SegmentSettings, {"on_empty": "skip"}, where="segment")


@pytest.mark.parametrize(("n", "count"), [(10, 3), (7, 7), (2, 3), (0, 2), (101, 8)])
def test_shards_cover_every_item_exactly_once(n, count):
    items = [f"{i:05d}.png" for i in range(n)]
    parts = [shard(items, index, count) for index in range(count)]
    assert [item for part in parts for item in part] == items
    sizes = [len(part) for part in parts]
    assert max(sizes) - min(sizes) <= 1


def test_a_shard_outside_the_count_is_a_config_error():
    with pytest.raises(ConfigError, match="shard 3 does not exist among 3 shards"):
        shard(list(range(5)), 3, 3)
    with pytest.raises(ConfigError):
        shard(list(range(5)), -1, 3)


def test_an_empty_shard_gives_an_empty_table_with_the_columns(trained, tmp_path):
    model, prior = trained
    empty_shard = shard([("a.png", Path("a.png"))], 0, 2)
    assert empty_shard == []
    qc = run(model, empty_shard, prior, tmp_path / "out")
    assert qc.empty and list(qc.columns) == list(QC_COLUMNS)
    qc = run(model, empty_shard, prior, tmp_path / "out", truth_dir=tmp_path)
    assert qc.empty and list(qc.columns) == [*QC_COLUMNS, "dice"]
    assert not any((tmp_path / "out").glob("*.png"))


def test_the_stage_segments_its_shard_and_dilates_it(trained, images, tmp_path):
    """generate_masks then dilate_masks over three shards of three images, one of them corrupt and skipped."""
    model, prior = trained
    items, truth_dir = images
    reference = QCReference(bad_dice=0.93, dice_offset=0.01, n_calibration=3)
    SegmenterBundle(model, AutoPrompt(prior=prior, start="prior", steps=1), reference).save(
        tmp_path / "model.pth"
    )
    corrupt = tmp_path / items[1][0]
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    subset = pd.DataFrame(
        {
            "image": [name for name, _ in items],
            "path": [str(items[0][1]), str(corrupt), str(items[2][1])],
        }
    )
    subset.to_csv(tmp_path / "subset.csv", index=False)
    settings = SegmentSettings(**BASE.model_dump(), shards=3)
    tables = []
    for shard_index in range(3):
        out = tmp_path / f"shard{shard_index}"
        tables.append(
            generate_shard(
                model=tmp_path / "model.pth",
                subset=tmp_path / "subset.csv",
                truth=truth_dir,
                masks=out / "tight",
                table=out / "tight.csv",
                record=out / "record.json",
                shard=shard_index,
                segmenter=SEGMENTER,
                settings=settings,
                on_bad="skip",
                device="cpu",
                threads=1,
            )
        )
        assert pd.read_csv(out / "tight.csv").shape == tables[-1].shape
        assert json.loads((out / "record.json").read_text())["name"] == f"generate_masks/shard={shard_index}"
    assert [len(table) for table in tables] == [1, 0, 1]
    assert {"qc_score", "flag", "reason", "agreement"} <= set(tables[0].columns)
    assert tables[0]["qc_score"].between(0, 1).all()
    assert sorted(p.name for i in range(3) for p in (tmp_path / f"shard{i}" / "tight").iterdir()) == [
        items[0][0],
        items[2][0],
    ]
    out = tmp_path / "shard0"
    loose = dilate_masks(
        out / "tight", out / "tight.csv", None, out / "loose", out / "loose.csv", LooseSettings(radius=40)
    )
    tight = read_mask(out / "tight" / items[0][0])
    dilated = read_mask(out / "loose" / items[0][0])
    assert (dilated >= tight).all() and dilated.sum() > tight.sum()
    assert loose["radius_px"].item() == pytest.approx(40 * SIZES[0][1] / 1024)
    assert loose["lung_fraction"].item() == pytest.approx(dilated.mean())
    empty = dilate_masks(
        tmp_path / "shard1" / "tight",
        tmp_path / "shard1" / "tight.csv",
        None,
        tmp_path / "shard1" / "loose",
        tmp_path / "shard1" / "loose.csv",
        LooseSettings(radius=40),
    )
    assert empty.empty and (tmp_path / "shard1" / "loose").is_dir()


def test_an_unreadable_image_fails_its_shard_by_name(trained, tmp_path):
    model, prior = trained
    reference = QCReference(bad_dice=0.93)
    SegmenterBundle(model, AutoPrompt(prior=prior, start="prior", steps=0), reference).save(
        tmp_path / "model.pth"
    )
    corrupt = tmp_path / "00000009_000.png"
    corrupt.write_bytes(b"not an image")
    pd.DataFrame({"image": [corrupt.name], "path": [str(corrupt)]}).to_csv(
        tmp_path / "subset.csv", index=False
    )
    with pytest.raises(InputError, match=r"00000009_000\.png"):
        generate_shard(
            model=tmp_path / "model.pth",
            subset=tmp_path / "subset.csv",
            truth=None,
            masks=tmp_path / "tight",
            table=tmp_path / "tight.csv",
            record=tmp_path / "record.json",
            shard=0,
            segmenter=SEGMENTER,
            settings=SegmentSettings(**BASE.model_dump(), shards=1),
            on_bad="fail",
            device="cpu",
            threads=1,
        )
    assert not (tmp_path / "tight").exists() and not (tmp_path / "tight.csv").exists()


def test_the_refined_prompt_and_qc_rows_without_ground_truth(trained, images, tmp_path):
    """The default prompt re-prompts from the prior box; each row gets a QC score, flag and reason."""
    model, prior = trained
    items, truth_dir = images
    reference = QCReference(bad_dice=0.93)
    prompt = AutoPrompt(prior=prior, start="prior", steps=2)
    qc = generate_masks(model, items[:2], prompt, tmp_path, BASE, CPU, truth_dir=truth_dir, qc=reference)
    assert (qc["dice"] > 0.6).all()
    assert list(qc.columns) == [*QC_COLUMNS, *NO_TRUTH_QC, "dice"]
    assert qc["qc_score"].between(0, 1).all() and qc["agreement"].between(0, 1).all()
    assert ((qc["reason"].fillna("") != "") | ~qc["flag"]).all()


@pytest.mark.parametrize("shape", [(260, 300), (320, 200), (700, 410), (64, 64)])
def test_a_mask_on_the_decoders_grid_lands_on_the_same_fractions_of_each_image(shape):
    """A rectangle of logits on the square grid covers the same fractions of rows and columns of every
    image, whatever its aspect: rows scale by the height, columns by the width."""
    grid = 64
    logits = torch.full((1, grid, grid), -10.0)
    logits[0, 8:48, 16:32] = 10.0  # rows 1/8 to 3/4, columns 1/4 to 1/2
    ((name, mask),) = _DeviceMasks(["a.png"], logits, [torch.Size(shape)], [None]).arrays()
    height, width = shape
    assert name == "a.png" and mask.shape == shape and mask.dtype == bool
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    assert abs(rows[0] - height / 8) <= 1 and abs(rows[-1] + 1 - 3 * height / 4) <= 1
    assert abs(cols[0] - width / 4) <= 1 and abs(cols[-1] + 1 - width / 2) <= 1
    expected = np.zeros(shape, dtype=bool)
    expected[round(height / 8) : round(3 * height / 4), round(width / 4) : round(width / 2)] = True
    assert dice(mask, expected) > 0.99  # bilinear upsampling rounds only the corners


def test_the_lung_map_heads_agreement_enters_each_qc_row_and_the_score_is_the_certainty(
    trained, images, tmp_path
):
    """A head that sees no lung anywhere disagrees with every mask (agreement 0); one that sees lung
    everywhere agrees by 2f / (1 + f), f the mask's share of the decoder's grid. Neither moves the
    score: it is the calibration's line through each mask's certainty, computed here from the decoder's
    own logits for the same boxes."""
    model, prior = trained
    items, _ = images
    reference = QCReference(bad_dice=0.93, dice_offset=0.3, dice_slope=0.7, n_calibration=40)
    scores = []
    for sign in (-1.0, 1.0):
        head = LungMapHead(channels=256, width=4).eval()
        with torch.no_grad():
            head.net[-1].weight.zero_()
            head.net[-1].bias.fill_(50.0 * sign)
        # Unfused, so the masks are the decoder's and the extreme heads only judge them.
        prompt = AutoPrompt(prior=prior, head=head, start="prior", steps=0, fuse=0.0)
        qc = generate_masks(model, items[:2], prompt, tmp_path / f"head{sign:+.0f}", BASE, CPU, qc=reference)
        if sign < 0:
            assert (qc["map_agreement"] == 0.0).all()
        else:
            share = qc["raw_lung_fraction"]
            np.testing.assert_allclose(qc["map_agreement"], 2 * share / (1 + share), atol=0.03)
        scores.append(qc["qc_score"].to_numpy())
    with torch.no_grad():
        pixels = [resize_grey(read_grey(path), model.input_size) for _, path in items[:2]]
        embeddings = encode_all(model, np.stack(pixels))
        logits = prompt(model, embeddings.float())[0].float().numpy()
    cleaned = np.stack([clean_mask(item > 0) for item in logits])
    expected = np.clip(0.3 + 0.7 * certainty(logits, cleaned), 0, 1)
    np.testing.assert_allclose(qc["certainty"], certainty(logits, cleaned), rtol=1e-5)
    np.testing.assert_allclose(scores[0], expected, rtol=1e-5)
    np.testing.assert_allclose(scores[1], expected, rtol=1e-5)


def test_mask_generation_writes_the_fused_mask(trained, images, tmp_path):
    """A head sure of lung everywhere (logit 1000), fused at weight 1, makes every written mask the whole
    image; unfused, the same prompt writes the decoder's masks, which are not."""
    model, prior = trained
    items, _ = images
    head = LungMapHead(channels=256, width=4).eval()
    with torch.no_grad():
        head.net[-1].weight.zero_()
        head.net[-1].bias.fill_(1000.0)
    fractions = {}
    for fuse in (0.0, 1.0):
        prompt = AutoPrompt(prior=prior, head=head, start="prior", steps=0, fuse=fuse)
        qc = generate_masks(model, items[:2], prompt, tmp_path / f"fuse{fuse}", BASE, CPU)
        fractions[fuse] = qc["lung_fraction"].to_numpy()
        written = [read_mask(tmp_path / f"fuse{fuse}" / name) for name, _ in items[:2]]
        np.testing.assert_allclose([mask.mean() for mask in written], fractions[fuse])
    assert (fractions[1.0] == 1.0).all() and (fractions[0.0] < 0.9).all()


def test_the_written_mask_is_the_decoder_grid_logits_resized_bilinearly_thresholded_at_zero_and_cleaned(
    trained, images, tmp_path
):
    """Each written mask is, to a pixel in ten thousand: the prompt's logits for that image, resized
    bilinearly to the image's size, above 0, then cleaned with the settings' components and hole filling."""
    model, prior = trained
    items, _ = images
    prompt = AutoPrompt(prior=prior, start="prior", steps=0)
    run(model, items, prior, tmp_path, batch_size=1)
    with torch.no_grad():
        for name, path in items:
            image = read_grey(path)
            embedding = encode_all(model, resize_grey(image, model.input_size)[None]).float()
            logits = prompt(model, embedding)[0]
            resized = torch.nn.functional.interpolate(logits[None], size=image.shape, mode="bilinear")[0, 0]
            expected = clean_mask((resized > 0).numpy(), BASE.keep_components, BASE.fill_holes)
            # The encoder's batch path may move a logit at zero by float rounding (1 pixel in 262,144 seen);
            # a threshold of 1 or a nearest resize moves about 1% of them.
            assert (read_mask(tmp_path / name) != expected).mean() <= 1e-4, name


@pytest.mark.parametrize(("keep", "fill"), [(1, True), (2, False), (0, True)])
def test_a_mask_is_cleaned_with_the_settings_components_and_hole_filling(keep, fill, tmp_path):
    """A raw mask of three bodies, the largest with a hole: written as ``clean_mask`` with the settings'
    ``keep_components`` and ``fill_holes``, not the defaults."""
    raw = np.zeros((40, 40), dtype=bool)
    raw[2:20, 2:20] = True
    raw[8:12, 8:12] = False  # the hole
    raw[25:35, 25:35] = True
    raw[25:28, 2:5] = True
    settings = parse(InferenceSettings, {**BASE.model_dump(), "keep_components": keep, "fill_holes": fill})
    _finish("case.png", raw, tmp_path, settings, None)
    written = read_mask(tmp_path / "case.png")
    assert np.array_equal(written, clean_mask(raw, keep, fill))
    assert written[10, 10] == fill
    assert written[26, 3] == (keep == 0) and written[30, 30] == (keep != 1)


def test_an_empty_mask_is_refused_in_the_words_that_say_what_to_do(tmp_path):
    with pytest.raises(InputError) as caught:
        _finish("case.png", np.zeros((40, 40), dtype=bool), tmp_path, BASE, None)
    assert str(caught.value) == (
        "case.png: the lung mask covers 0.0% of the image (below segment.min_lung_fraction). "
        "Check the image, or set segment.on_empty: full_image to keep the original image for it."
    )
    assert not (tmp_path / "case.png").exists()


def test_a_fixed_box_prompt_gets_qc_rows_too(trained, images, tmp_path):
    """QC reads the boxes the masks were decoded from: with the prior box prompt, those are the prior box."""
    model, prior = trained
    items, _ = images
    reference = QCReference(bad_dice=0.93, dice_offset=0.3, dice_slope=0.7, n_calibration=40)
    qc = run(model, items, prior, tmp_path, qc=reference, prompt="box_prior")
    assert qc["agreement"].between(0, 1).all() and qc["qc_score"].between(0, 1).all()
    assert len(qc) == len(items)


def test_too_many_fallbacks_are_logged_and_refused_in_full_words(caplog):
    """The shard's empty-mask policy, from its rows: the count is logged, and past the limit the job stops
    with what to check."""
    settings = parse(InferenceSettings, {**BASE.model_dump(), "max_empty_fraction": 0.5})
    rows = [{"image": f"{i}.png", "fallback": i < 2} for i in range(3)]
    with (
        caplog.at_level(logging.WARNING, logger="cxrmask.segment.inference"),
        pytest.raises(InputError) as caught,
    ):
        _mask_table(rows, settings, qc=False, truth=False)
    assert "2 of 3 masks were empty or too small and replaced by the full image" in caplog.messages
    assert str(caught.value) == (
        "2 of 3 masks are empty or below 2% of the image (limit 50.0%): check the segmenter checkpoint, "
        "the box prompt (segment.prompt) and the images."
    )
