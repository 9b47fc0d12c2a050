"""The levers against a finding cut out of (or spilled past) the lungs, on real X-rays, same run: painted
opacities in training, and the lung-map head's logits fused into the masks.

    python benchmarks/bench_opacities.py --data DIR [--copies 0 2] [--head-fusion 0 1] [--train-images 0 64]
        [--epochs 4] [--out F]

DIR is a COVID-19 lung-mask-style set (``images/``, ``masks/``, ``manifest.csv``), split by patient as
``bench_prompts.py`` splits it (60/20/20; ``--train-images`` keeps at most that many training images, 0 all
of them, the smaller-data check). The real images are encoded once (cached to ``--cache``). For each
training size, LiteMedSAM is fine-tuned through the pipeline's own ``fit_segmenter`` (decoder mode, the
lung-map head, QC calibrated on validation) once per pair of ``--copies`` (painted copies of each training
image) and ``--head-fusion`` (``finetune.head_fusion``); the first pair is that size's baseline. Prints, per
run, the test split's Dice with the default no-ground-truth prompt (mean, 10th percentile, worst), HD95, and
QC's Spearman, precision and recall, with each run's difference from its own baseline.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from bench_prompts import load_data

from cxrmask.config import FinetuneSettings, SegmenterSettings
from cxrmask.segment.autoprompt import encode_all
from cxrmask.segment.dataset import SegData
from cxrmask.segment.fit import fit_segmenter
from cxrmask.segment.models import load_segmenter
from cxrmask.segment.prompts import BoxPrior

log = logging.getLogger("bench_opacities")


def without_spare(data: SegData) -> SegData:
    """The items of the train, val and test splits (the set-aside ones are never encoded)."""
    keep = data.split != "spare"
    return SegData(data.keys[keep], data.images[keep], data.masks[keep], data.boxes[keep], data.split[keep])


LITE = SegmenterSettings(arch="litemedsam", checkpoint="bundled", image_size=256)


def fit(data: SegData, embeddings: torch.Tensor, copies: int, fusion: float, epochs: int, seed: int) -> dict:
    """One fine-tuning run through the pipeline's path; the default prompt's test numbers and QC's."""
    model = load_segmenter(LITE.spec, LITE.checkpoint)
    prior = BoxPrior.fit(list(data.subset("train").masks), margin=0.03)
    settings = FinetuneSettings(
        mode="decoder",
        epochs=epochs,
        batch_size=8,
        amp=False,
        patience=0,
        opacity_copies=copies,
        head_fusion=fusion,
    )
    started = time.perf_counter()
    bundle, _ = fit_segmenter(
        model, data, prior, settings, torch.device("cpu"), seed=seed, embeddings=embeddings
    )
    summary = bundle.summary
    test = summary["test"]["finetuned"][summary["default_prompt"]]
    qc = summary["qc_test"]
    return {
        "train": summary["n_train"],
        "copies": copies,
        "head_fusion": fusion,
        "dice_mean": test["dice_mean"],
        "dice_p10": test["dice_p10"],
        "dice_min": test["dice_min"],
        "hd95_mean": test["hd95_mean"],
        "qc_spearman": qc["spearman_qc_dice"],
        "qc_precision": qc["flag_precision"],
        "qc_recall": qc["flag_recall"],
        "qc_bad": qc["n_bad"],
        "seconds": time.perf_counter() - started,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--copies", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--head-fusion", type=float, nargs="+", default=[0.0, 1.0])
    parser.add_argument("--train-images", type=int, nargs="+", default=[0, 64], help="0: all")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/cxrmask_bench_opacities_embeddings.pt"))
    parser.add_argument("--out", type=Path, help="write the table (Markdown) and rows (JSON) here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    torch.set_num_threads(args.threads)
    rows = []
    everything = load_data(args.data, args.seed, np.iinfo(np.int32).max)
    # the real images are encoded once (and cached); each run encodes only its painted copies
    embeddings = encode_all(load_segmenter(LITE.spec, LITE.checkpoint), everything.images, args.cache)
    for size in args.train_images:
        split = load_data(args.data, args.seed, size or np.iinfo(np.int32).max).split
        keep = split != "spare"
        data = SegData(everything.keys, everything.images, everything.masks, everything.boxes, split)
        data = without_spare(data)
        baseline = None
        for copies, fusion in itertools.product(args.copies, args.head_fusion):
            torch.manual_seed(args.seed)
            row = fit(data, embeddings[torch.from_numpy(keep)], copies, fusion, args.epochs, args.seed)
            baseline = baseline or row
            for key in ("dice_mean", "dice_p10", "dice_min"):
                row[f"Δ {key}"] = row[key] - baseline[key]
            rows.append(row)
            table = pd.DataFrame(rows).to_markdown(index=False, floatfmt=".4f")
            print(
                f"test split {int((data.split == 'test').sum())} images, default prompt\n\n{table}",
                flush=True,
            )
            if args.out is not None:
                args.out.with_suffix(".md").write_text(table + "\n")
                args.out.with_suffix(".json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
