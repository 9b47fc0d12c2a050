"""What fusing the lung-map head's logits into the decoder's does to a segmenter's masks, weight by weight, on
any folder of images with reference lungs; with a label table, by finding as well.

    python benchmarks/bench_fusion.py --model MODEL.pt --images DIR --masks DIR [--split test]
        [--labels TABLE.csv] [--weights 0 0.5 1 2]

Images and reference masks are matched by file name; with ``--split``, only the images of that split of the
bundle's ``MODEL.summary.json`` are read (as in bench_qc_signals.py). Each weight's masks are the bundle's
no-ground-truth prompt with ``fuse`` set to it (0: the decoder alone), cleaned as the workflow cleans them,
on the decoder's grid, against the references resized to it. It prints, per weight, the mean, 10th
percentile and worst Dice and the masks below 0.93. ``--labels`` is a table with an ``image`` column and one
0/1 column per finding (the workflow's ``nih/subset.csv``): each finding's positives' mean and 10th
percentile against its negatives' mean, and the difference, the label-correlated error the fusion is for.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from bench_qc_signals import add_reference_arguments, names

from cxrmask.imageio import read_grey, read_mask
from cxrmask.segment.autoprompt import encode_all
from cxrmask.segment.bundle import SegmenterBundle
from cxrmask.segment.postprocess import clean_mask, dice
from cxrmask.segment.preprocess import resize_grey, resize_mask
from cxrmask.vocabulary import NO_FINDING, STUDY_LABELS

BAD_DICE = 0.93


def by_finding(scores: pd.Series, labels: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Positives' mean and 10th percentile, negatives' mean and the difference, per finding column."""
    out = {}
    for finding in [f for f in (*STUDY_LABELS, NO_FINDING) if f in labels.columns]:
        positive = labels[finding].reindex(scores.index) == 1
        if positive.all() or not positive.any():
            continue
        yes, no = scores[positive], scores[~positive]
        out[finding] = {
            "positives": round(float(yes.mean()), 4),
            "positives_p10": round(float(np.percentile(yes, 10)), 4),
            "negatives": round(float(no.mean()), 4),
            "difference": round(float(yes.mean() - no.mean()), 4),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_reference_arguments(parser)
    parser.add_argument("--labels", type=Path, help="table with an image column and 0/1 finding columns")
    parser.add_argument("--weights", type=float, nargs="+", default=[0.0, 0.5, 1.0, 2.0])
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    torch.set_num_threads(1)
    bundle = SegmenterBundle.load(args.model)
    model, auto = bundle.model.eval(), bundle.prompt
    if auto.head is None:
        parser.error(f"{args.model} has no lung-map head: there is nothing to fuse.")
    files = names(args)
    labels = None
    if args.labels:
        labels = pd.read_csv(args.labels).set_index("image")
        files = [name for name in files if name in labels.index]
    size = model.input_size
    images = np.stack([resize_grey(read_grey(args.images / name), size) for name in files])
    truth = [read_mask(args.masks / name) for name in files]
    embeddings = encode_all(model, images)
    results = {}
    for weight in args.weights:
        prompt, scores = auto.with_options(fuse=weight), []
        with torch.no_grad():
            for start in range(0, len(embeddings), 16):
                logits, _ = prompt(model, embeddings[start : start + 16].float())
                for i, logit in enumerate(logits.float().numpy()):
                    mask = clean_mask(logit > 0)
                    scores.append(dice(mask, resize_mask(truth[start + i], mask.shape[0])))
        dices = pd.Series(scores, index=files)
        row = {
            "n": len(dices),
            "dice_mean": round(float(dices.mean()), 4),
            "dice_p10": round(float(np.percentile(dices, 10)), 4),
            "dice_min": round(float(dices.min()), 4),
            f"below_{BAD_DICE}": int((dices < BAD_DICE).sum()),
        }
        if labels is not None:
            row["by_finding"] = by_finding(dices, labels)
        results[f"fuse={weight:g}"] = row
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
