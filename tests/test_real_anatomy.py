"""LiteMedSAM on real chest X-rays with real lung masks, through the project's own fine-tuning path.

The images and masks (COVID-19 image data collection, V7 Labs lung
annotations) live beside the repository, not in it; without them the test
is skipped. Images are chosen one per patient, so no patient is both in the
training and in the held-out half. The encoder is run once per image
(``decoder`` mode caches its embeddings), which is most of the test's time;
``amp`` is on, as in the pipeline, so a CPU that computes bf16 natively
runs it in bf16 (about twice as fast) and any other in float32.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from cxrmask.config import FinetuneSettings, SegmenterSettings
from cxrmask.segment.dataset import prepare
from cxrmask.segment.finetune import finetune
from cxrmask.segment.models import load_segmenter
from cxrmask.segment.pairs import find_pairs
from cxrmask.segment.prompts import BoxPrior

log = logging.getLogger(__name__)

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "covid_lungseg"
N_TRAIN = N_HELD_OUT = 24
EPOCHS = 3

pytestmark = [
    pytest.mark.slow,
    pytest.mark.usefixtures("one_torch_thread"),
    pytest.mark.skipif(
        not (DATA / "manifest.csv").is_file(),
        reason="real lung-mask set not found at <repo>/../shared/data/covid_lungseg",
    ),
]


def one_image_per_patient(n: int, seed: int) -> list[str]:
    """``n`` image ids from ``n`` different patients, drawn by ``seed``."""
    manifest = pd.read_csv(DATA / "manifest.csv", dtype={"id": str})
    firsts = sorted(manifest.groupby("patientid")["id"].first())
    chosen = np.random.default_rng(seed).choice(len(firsts), size=n, replace=False)
    return [firsts[i] for i in sorted(chosen)]


def test_finetuned_litemedsam_beats_zero_shot_on_held_out_real_lungs():
    pairs = find_pairs(DATA, "images/{id}.png", ["masks/{id}.png"])
    assert len(pairs) == len(pd.read_csv(DATA / "manifest.csv"))
    by_key = {pair.key: pair for pair in pairs}
    chosen = [by_key[key] for key in one_image_per_patient(N_TRAIN + N_HELD_OUT, seed=0)]
    spec = SegmenterSettings(arch="litemedsam", image_size=256).spec
    model = load_segmenter(spec, "bundled")
    data = prepare(chosen, model.input_size, model.mask_size, val_fraction=0.5, seed=0)
    assert (data.split == "val").sum() == N_HELD_OUT
    prior = BoxPrior.fit(list(data.subset("train").masks), margin=0.03)
    settings = FinetuneSettings(mode="decoder", epochs=EPOCHS, batch_size=8, lr=1e-4, amp=True)

    result = finetune(model, data, prior, settings, torch.device("cpu"), seed=0)

    zero, best, last = result.zero_shot, result.best, result.history[-1]
    report = (
        f"LiteMedSAM, {N_HELD_OUT} held-out real chest X-rays ({N_TRAIN} fine-tuning, {EPOCHS} epochs): "
        f"Dice with the ground-truth box {zero['val_dice']:.4f} zero-shot, {last['val_dice']:.4f} fine-tuned "
        f"(best epoch {best['epoch']}: {best['val_dice']:.4f}); with the learned prior box "
        f"{zero['val_dice_prior_box']:.4f} zero-shot, {last['val_dice_prior_box']:.4f} fine-tuned"
    )
    log.info(report)
    print(report)
    assert 0.8 < zero["val_dice"] < 0.95
    assert last["val_dice"] > zero["val_dice"]
    assert best["epoch"] > 0
    assert last["val_dice_prior_box"] > zero["val_dice_prior_box"]
