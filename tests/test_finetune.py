"""Fine-tuning a small SAM on synthetic lungs: it learns, keeps its best epoch, trains what its mode says."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from tinysam import TINY_ENCODER, tiny_sam, write_lung_set

from cxrmask.config import FinetuneSettings, SegmenterSettings, parse
from cxrmask.errors import ConfigError, InputError
from cxrmask.segment.autoprompt import encode_all
from cxrmask.segment.dataset import SegData, prepare
from cxrmask.segment.finetune import batch_dice, finetune, segmentation_loss
from cxrmask.segment.fit import fit_segmenter
from cxrmask.segment.models import load_segmenter, load_state
from cxrmask.segment.pairs import find_pairs
from cxrmask.segment.preprocess import to_model_input
from cxrmask.segment.prompts import BoxPrior
from cxrmask.stages.finetune_medsam import finetune_medsam

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CPU = torch.device("cpu")
EPOCHS = 5
HISTORY_KEYS = {"epoch", "train_loss", "val_dice", "val_dice_prior_box", "seconds"}


def settings(**overrides) -> FinetuneSettings:
    values = {"mode": "decoder", "epochs": EPOCHS, "batch_size": 4, "lr": 1e-3, "amp": False}
    return FinetuneSettings(**{**values, **overrides})


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> SegData:
    root = tmp_path_factory.mktemp("lungs")
    write_lung_set(root, [(256, 256)] * 8, seed=0)
    pairs = find_pairs(root, "images/{id}.png", ["masks/{id}.png"])
    return prepare(pairs, input_size=256, mask_size=64, val_fraction=0.25, seed=0)


@pytest.fixture(scope="module")
def prior(data) -> BoxPrior:
    return BoxPrior.fit(list(data.subset("train").masks), margin=0.03)


@pytest.fixture(scope="module", params=["decoder", "full"])
def run(request, data, prior):
    """One fine-tuning per mode: the initial weights, the result and what ``on_epoch`` saw."""
    model = tiny_sam(seed=0)
    initial = {key: value.clone() for key, value in model.state_dict().items()}
    seen = []
    result = finetune(model, data, prior, settings(mode=request.param), CPU, seed=0, on_epoch=seen.append)
    return request.param, initial, result, seen


def val_dice(state: dict[str, torch.Tensor], data: SegData) -> float:
    """Mean hard Dice of ``state`` on the val items with their ground-truth boxes, computed here."""
    model = tiny_sam(seed=1)
    model.load_state_dict(state)
    model.eval()
    val = data.subset("val")
    with torch.no_grad():
        embeddings = model.encode(to_model_input(torch.from_numpy(val.images)))
        logits = model.decode(embeddings, torch.from_numpy(val.boxes)[:, None]).amax(dim=1)
    return float(batch_dice(logits, torch.from_numpy(val.masks)).mean())


def test_the_synthetic_set_is_split_and_sized_for_the_model(data):
    assert data.images.shape == (8, 256, 256) and data.images.dtype == np.uint8
    assert data.masks.shape == (8, 64, 64) and data.masks.dtype == bool
    assert sorted(data.split.tolist()) == ["train"] * 6 + ["val"] * 2


def test_finetuning_lowers_the_loss_and_beats_the_random_start(run):
    mode, _, result, _ = run
    losses = [row["train_loss"] for row in result.history[1:]]
    assert losses[-1] < 0.8 * losses[0], (mode, losses)
    assert result.best["val_dice"] > result.zero_shot["val_dice"] + 0.2, (mode, result.history)
    assert result.history[-1]["val_dice"] > result.zero_shot["val_dice"], mode
    assert result.best["val_dice_prior_box"] > result.zero_shot["val_dice_prior_box"], mode


def test_the_kept_state_is_the_best_epoch(run, data):
    _, _, result, _ = run
    dice = [row["val_dice"] for row in result.history]
    assert result.best["epoch"] == int(np.argmax(dice)) > 0
    assert result.best == result.history[result.best["epoch"]]
    assert val_dice(result.state, data) == pytest.approx(result.best["val_dice"], abs=1e-6)
    assert all(value.device.type == "cpu" for value in result.state.values())


def test_each_mode_trains_what_it_says(run):
    mode, initial, result, _ = run

    def changed(prefix: str) -> bool:
        keys = [key for key in initial if key.startswith(prefix)]
        return any(not torch.equal(initial[key], result.state[key]) for key in keys)

    assert changed("mask_decoder.")
    assert not changed("prompt_encoder.")
    assert changed("image_encoder.") == (mode == "full")


def test_history_has_a_zero_shot_row_and_one_row_per_epoch(run):
    _, _, result, seen = run
    assert [row["epoch"] for row in result.history] == list(range(EPOCHS + 1))
    assert all(set(row) == HISTORY_KEYS for row in result.history)
    first = result.history[0]
    assert math.isnan(first["train_loss"]) and first["seconds"] == 0.0
    assert result.zero_shot == {
        "val_dice": first["val_dice"],
        "val_dice_prior_box": first["val_dice_prior_box"],
    }
    assert all(row["train_loss"] > 0 and row["seconds"] > 0 for row in result.history[1:])
    assert all(0 <= row["val_dice"] <= 1 for row in result.history)
    assert seen == result.history


def test_patience_stops_when_val_dice_stalls(data, prior):
    """With a learning rate of zero nothing changes, so the run stops ``patience`` epochs after epoch 0."""
    model = tiny_sam(seed=0)
    initial = {key: value.clone() for key, value in model.state_dict().items()}
    result = finetune(model, data, prior, settings(epochs=10, patience=2).model_copy(update={"lr": 0.0}), CPU)
    assert [row["epoch"] for row in result.history] == [0, 1, 2]
    assert result.best["epoch"] == 0
    assert all(torch.equal(initial[key], value) for key, value in result.state.items())


def test_same_seed_same_history_on_cpu(data, prior):
    def history(seed: int, epochs: int = 2) -> tuple[list[dict], dict]:
        result = finetune(tiny_sam(seed=0), data, prior, settings(epochs=epochs), CPU, seed=seed)
        return [{k: v for k, v in row.items() if k != "seconds"} for row in result.history], result.state

    first, first_state = history(0)
    again, again_state = history(0)
    other, _ = history(1, epochs=1)
    assert pd.DataFrame(first).equals(pd.DataFrame(again))
    assert all(torch.equal(first_state[key], again_state[key]) for key in first_state)
    assert other[1]["train_loss"] != first[1]["train_loss"]


def test_settings_name_unknown_keys_and_bad_modes():
    assert parse(FinetuneSettings, {}) == FinetuneSettings()
    parsed = parse(FinetuneSettings, {"mode": "decoder", "epochs": 3, "box_jitter": 0})
    assert (parsed.mode, parsed.epochs, parsed.box_jitter) == ("decoder", 3, 0)
    with pytest.raises(ConfigError, match=r"finetune\.learning_rate: unknown key"):
        parse(FinetuneSettings, {"learning_rate": 1e-4}, where="finetune")
    with pytest.raises(ConfigError, match=r"finetune\.mode: Input should be 'full' or 'decoder'"):
        parse(FinetuneSettings, {"mode": "encoder"}, where="finetune")


def test_the_loss_is_near_zero_for_a_perfect_prediction_and_large_for_a_wrong_one():
    target = torch.zeros(2, 1, 64, 64)
    target[:, :, 10:50, 8:30] = 1
    perfect = (target * 2 - 1) * 30
    assert float(segmentation_loss(perfect, target)) < 1e-3
    assert float(segmentation_loss(-perfect, target)) > 1.9
    assert 0.5 < float(segmentation_loss(torch.zeros_like(target), target)) < 1.5
    logits = torch.zeros_like(target, requires_grad=True)
    segmentation_loss(logits, target).backward()
    # the gradient pushes logits up inside the mask and down outside
    assert (logits.grad[target == 1] < 0).all() and (logits.grad[target == 0] > 0).all()


def test_batch_dice_edge_cases():
    truth = torch.zeros(5, 8, 8, dtype=torch.bool)
    truth[[0, 2, 4], 2:6, 2:6] = True
    logits = torch.full((5, 8, 8), -1.0)
    logits[0, 2:6, 2:6] = 1.0  # perfect
    logits[3, 0, 0] = 1.0  # prediction without truth
    logits[4, 2:6, 2:4] = 1.0  # half the truth
    logits[4, 0, 0] = 0.0  # a logit of exactly 0 is background
    dice = batch_dice(logits, truth)
    # image 1: both empty (agreement); image 2: truth missed
    np.testing.assert_allclose(dice, [1.0, 1.0, 0.0, 0.0, 2 * 8 / (8 + 16)])
    assert dice.dtype == np.float32


def test_the_stage_writes_best_weights_history_and_summary(tmp_path):
    """The rule's stage: a bundle, the history and a summary scored on a test split it never trained on."""
    write_lung_set(tmp_path / "pairs", [(256, 256)] * 10, seed=2)
    pairs = find_pairs(tmp_path / "pairs", "images/{id}.png", ["masks/{id}.png"])
    data = prepare(pairs, input_size=256, mask_size=64, val_fraction=0.2, seed=0, test_fraction=0.2)
    prior = BoxPrior.fit(list(data.subset("train").masks), margin=0.03)
    data.save(tmp_path / "seg_data.npz")
    prior.save(tmp_path / "prior.json")
    segmenter = SegmenterSettings(image_size=256, encoder=TINY_ENCODER, checkpoint=None)
    summary = finetune_medsam(
        data=tmp_path / "seg_data.npz",
        prior=tmp_path / "prior.json",
        checkpoint=None,
        model=tmp_path / "model.pth",
        history=tmp_path / "history.csv",
        summary=tmp_path / "summary.json",
        record=tmp_path / "record.json",
        start_weights=None,
        segmenter=segmenter,
        settings=FinetuneSettings(mode="decoder", epochs=2, batch_size=4, lr=1e-3, amp=False),
        device="cpu",
        seed=0,
        threads=1,
    )
    assert json.loads((tmp_path / "summary.json").read_text()) == summary
    assert (summary["n_train"], summary["n_val"], summary["n_test"]) == (6, 2, 2)
    assert set(summary["test"]["finetuned"]) == {"truth", "prior", "prior_refined", "head", "head_refined"}
    assert summary["test"]["finetuned"]["truth"]["n"] == 2
    assert summary["qc_test"]["n"] == 2 and summary["qc_val"]["n"] == 2
    assert summary["qc_calibration"]["n_calibration"] == 2 and summary["qc_calibration"]["bad_dice"] == 0.93
    assert not (tmp_path / "model.resume.pt").exists()
    history = pd.read_csv(tmp_path / "history.csv")
    assert history["epoch"].tolist() == [0, 1, 2]
    assert summary["zero_shot_val_dice"] == pytest.approx(history["val_dice"][0])
    assert summary["finetuned_val_dice"] == pytest.approx(history["val_dice"].max())
    spec = {"arch": "vit_b", "image_size": 256, **TINY_ENCODER}
    model = load_segmenter(spec, tmp_path / "model.pth")
    assert load_state(tmp_path / "model.pth")[1]["summary"] == summary
    assert val_dice(model.state_dict(), data) == pytest.approx(summary["finetuned_val_dice"], abs=1e-6)
    record = json.loads((tmp_path / "record.json").read_text())
    assert record["name"] == "finetune_medsam"
    assert {m[0] for m in record["metrics"]} >= {
        "val_dice",
        "test_finetuned_head_refined_dice_mean",
        "test_zero_shot_truth_hd95_mean",
    }


class KilledError(Exception):
    """Stands for the job being killed after an epoch's checkpoint was written."""


@pytest.mark.parametrize("train_prompt", ["truth", "inference"])
def test_a_killed_run_resumes_to_the_weights_of_an_uninterrupted_one(tmp_path, data, prior, train_prompt):
    chosen = settings(epochs=4, train_prompt=train_prompt)
    straight = finetune(tiny_sam(seed=0), data, prior, chosen, CPU, seed=0, checkpoint=tmp_path / "a.ckpt")

    def kill_after_epoch_2(row: dict) -> None:
        if row["epoch"] == 2:
            raise KilledError

    checkpoint = tmp_path / "b.ckpt"
    with pytest.raises(KilledError):
        finetune(
            tiny_sam(seed=0),
            data,
            prior,
            chosen,
            CPU,
            seed=0,
            on_epoch=kill_after_epoch_2,
            checkpoint=checkpoint,
        )
    # The on_epoch hook runs after the checkpoint (as the classifier's): epochs 0-2 are replayed, then 3, 4.
    seen = []
    resumed = finetune(
        tiny_sam(seed=5), data, prior, chosen, CPU, seed=0, on_epoch=seen.append, checkpoint=checkpoint
    )
    assert [row["epoch"] for row in seen] == [0, 1, 2, 3, 4]
    assert [row["epoch"] for row in resumed.history] == [0, 1, 2, 3, 4]
    assert resumed.best["epoch"] == straight.best["epoch"]
    assert all(torch.equal(straight.state[key], resumed.state[key]) for key in straight.state)
    without = lambda rows: [{k: v for k, v in row.items() if k != "seconds"} for row in rows]  # noqa: E731
    assert pd.DataFrame(without(resumed.history)).equals(pd.DataFrame(without(straight.history)))


def test_a_checkpoint_of_other_settings_is_set_aside_and_training_starts_afresh(
    tmp_path, data, prior, caplog
):
    """One policy for both loops (cxrmask.resume): a stale checkpoint is never mixed into the new run."""
    checkpoint = tmp_path / "c.ckpt"
    finetune(tiny_sam(seed=0), data, prior, settings(epochs=1), CPU, seed=0, checkpoint=checkpoint)
    fresh = finetune(tiny_sam(seed=0), data, prior, settings(epochs=1, lr=0.5), CPU, seed=0)
    with caplog.at_level("WARNING"):
        other = finetune(
            tiny_sam(seed=0), data, prior, settings(epochs=1, lr=0.5), CPU, seed=0, checkpoint=checkpoint
        )
    assert "belongs to another configuration" in caplog.text
    assert all(torch.equal(fresh.state[key], other.state[key]) for key in fresh.state)


def test_inference_prompts_train_on_prior_boxes_and_select_on_them(data, prior):
    chosen = settings(epochs=3, train_prompt="inference", prior_share=1.0, select_on="val_dice_prior_box")
    result = finetune(tiny_sam(seed=0), data, prior, chosen, CPU, seed=0)
    scores = [row["val_dice_prior_box"] for row in result.history]
    assert result.best["epoch"] == int(np.argmax(scores))
    assert result.best["val_dice_prior_box"] > result.zero_shot["val_dice_prior_box"] + 0.1
    with pytest.raises(ConfigError, match="train_prompt"):
        parse(FinetuneSettings, {"train_prompt": "gt"}, where="finetune")


def test_painted_copies_join_train_only_and_given_embeddings_give_the_same_bundle(tmp_path):
    """With opacity_copies the train split gains painted copies (and only it); embeddings of the real
    items given from outside encode just the copies and change nothing else."""
    write_lung_set(tmp_path / "pairs", [(256, 256)] * 10, seed=3)
    pairs = find_pairs(tmp_path / "pairs", "images/{id}.png", ["masks/{id}.png"])
    data = prepare(pairs, input_size=256, mask_size=64, val_fraction=0.2, seed=0, test_fraction=0.2)
    prior = BoxPrior.fit(list(data.subset("train").masks), margin=0.03)
    chosen = settings(epochs=1, opacity_copies=1)

    def fitted(embeddings=None):
        torch.manual_seed(0)
        return fit_segmenter(tiny_sam(seed=0), data, prior, chosen, CPU, seed=0, embeddings=embeddings)

    bundle, _ = fitted()
    summary = bundle.summary
    assert (summary["n_train"], summary["n_train_painted"], summary["n_val"], summary["n_test"]) == (
        6,
        6,
        2,
        2,
    )
    assert summary["test"]["finetuned"]["truth"]["n"] == 2 and summary["qc_val"]["n"] == 2
    given = encode_all(tiny_sam(seed=0), data.images)
    again, _ = fitted(given)
    assert again.summary == summary
    with pytest.raises(InputError, match="9 embeddings given for a fine-tuning set of 10 items"):
        fitted(given[:9])
