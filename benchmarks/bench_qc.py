"""Which no-ground-truth signals rank real held-out masks by their true Dice (Spearman), default model.

    python benchmarks/bench_qc.py --data DIR [--epochs 4] [--train-images 64] [--cache /tmp/emb.pt]

Same data, split and cached embeddings as benchmarks/bench_prompts.py; fine-tunes the default recipe
(ground-truth boxes), prompts the test images with the default no-ground-truth prompt (head box, refined),
and prints, for each candidate QC signal, its Spearman correlation with the masks' true Dice on the
validation split and on the test split, and the library's QC (head agreement calibrated on the validation
split, cxrmask.segment.fit.calibrate_qc) judged on each: Spearman, and the flag's precision and recall for
masks with Dice below finetune.qc_bad_dice.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from bench_prompts import load_data
from scipy.stats import spearmanr

from cxrmask.config import FinetuneSettings, HeadSettings, SegmenterSettings
from cxrmask.segment.autoprompt import AutoPrompt, encode_all
from cxrmask.segment.boxhead import train_box_head
from cxrmask.segment.finetune import finetune
from cxrmask.segment.fit import calibrate_qc, qc_table, qc_validation
from cxrmask.segment.models import load_segmenter
from cxrmask.segment.postprocess import clean_mask
from cxrmask.segment.prompts import BoxPrior
from cxrmask.segment.qc import prompt_agreement
from cxrmask.segment.scoring import mask_scores

log = logging.getLogger("bench_qc")


def dice(a: np.ndarray, b: np.ndarray) -> float:
    total = a.sum() + b.sum()
    return float(2 * (a & b).sum() / total) if total else 1.0


def signals(model, auto: AutoPrompt, embeddings: torch.Tensor, truth: np.ndarray):
    """Candidate signals and the true Dice per item."""
    out: dict[str, list[float]] = {}
    masks = []
    with torch.no_grad():
        for start in range(0, len(embeddings), 8):
            batch = embeddings[start : start + 8].float()
            logits, boxes = auto(model, batch)
            head_map = F.interpolate(auto.head(batch), scale_factor=4, mode="bilinear")[:, 0].numpy() > 0
            prior_logits, _ = auto.with_options(start="prior", steps=0)(model, batch)
            for shift in (0.03, 0.06, 0.1):
                out.setdefault(f"agreement_{shift}", []).extend(prompt_agreement(model, batch, boxes, shift))
            for i, item in enumerate(logits.numpy()):
                raw = item > 0
                cleaned = clean_mask(raw)
                masks.append(cleaned)
                out.setdefault("head_vs_decoder", []).append(dice(clean_mask(head_map[i]), cleaned))
                out.setdefault("prior_vs_default", []).append(
                    dice(clean_mask(prior_logits[i].numpy() > 0), cleaned)
                )
                band = (np.abs(item) < 2).sum() / max(cleaned.sum(), 1)
                out.setdefault("neg_boundary_band", []).append(-float(band))
    true = mask_scores(np.stack(masks), truth)["dice"]
    values = {name: np.array(v) for name, v in out.items()}
    # The score before this library's calibration: prompt agreement x head agreement.
    values["agreement_x_head"] = values["agreement_0.03"] * values["head_vs_decoder"]
    return values, true


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--train-images", type=int, default=64)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/cxrmask_bench_prompts_embeddings.pt"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    torch.set_num_threads(1)
    data = load_data(args.data, args.seed, args.train_images)
    lite = SegmenterSettings(arch="litemedsam", checkpoint="bundled", image_size=256)
    model = load_segmenter(lite.spec, lite.checkpoint).eval()
    embeddings = encode_all(model, data.images, args.cache)
    split = {name: torch.from_numpy(data.split == name) for name in ("train", "val", "test")}
    train, val, test = (data.subset(name) for name in ("train", "val", "test"))
    prior = BoxPrior.fit(list(train.masks), margin=0.03)
    head, _ = train_box_head(
        embeddings[split["train"]].float(),
        torch.from_numpy(train.masks),
        embeddings[split["val"]].float(),
        torch.from_numpy(val.masks),
        HeadSettings(),
        seed=args.seed,
    )
    settings = FinetuneSettings(
        mode="decoder", epochs=args.epochs, batch_size=8, lr=1e-4, amp=False, patience=0
    )
    result = finetune(model, data, prior, settings, torch.device("cpu"), args.seed, embeddings=embeddings)
    model.load_state_dict(result.state)
    model.eval()
    # the prompts themselves: masks unfused, as in the README's tables (bench_fusion.py adds the head)
    auto = AutoPrompt(prior=prior, head=head, start="head", steps=3, margin=0.01, fuse=0.0)
    bad_dice = FinetuneSettings().qc_bad_dice
    reference = calibrate_qc(model, auto, embeddings[split["val"]].float(), val.masks, bad_dice)
    table = {"calibration": reference.to_dict()}
    for name, items in (("val", val), ("test", test)):
        values, true = signals(model, auto, embeddings[split[name]], items.masks)
        table[name] = {key: float(spearmanr(v, true).statistic) for key, v in values.items()}
        rows, masks = qc_table(model, auto, reference, embeddings[split[name]].float())
        table[name]["library_qc"] = qc_validation(rows, masks, items.masks, bad_dice)
        np.savez(f"/tmp/cxrmask_bench_qc_{name}.npz", true=true, **values)
    print(json.dumps(table, indent=1))


if __name__ == "__main__":
    main()
