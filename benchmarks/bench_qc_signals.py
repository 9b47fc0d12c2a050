"""How well no-ground-truth signals rank a fine-tuned segmenter's masks by their true Dice, and how the flag
would fare on each, for any segmenter bundle and any folder of images with reference lungs.

    python benchmarks/bench_qc_signals.py --model MODEL.pt --images DIR --masks DIR [--split test]

Images and reference masks are matched by file name. With ``--split``, only the images of that split of
the bundle's ``MODEL.summary.json`` (written by ``cxrmask seg-finetune``) are read. The masks are the
bundle's default prompt's, cleaned as the workflow cleans them, on the decoder's grid. Signals:

* ``certainty``: one less the decoder's uncertain pixels (|logit| < 2) per mask pixel (the library's QC
  score before its calibration);
* ``head``: Dice with the lung-map head's lungs (the score before it);
* ``prompt``: mean Dice with the masks of boxes moved by 3% of the side;
* ``self_dice``: the Dice the decoder expects of itself, from its own probabilities.

It prints each signal's Spearman with the true Dice, and the library's flag (QC as calibrated in the
bundle) judged by the same Dice.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

from cxrmask.imageio import read_grey, read_mask
from cxrmask.segment.autoprompt import encode_all
from cxrmask.segment.bundle import SegmenterBundle
from cxrmask.segment.postprocess import dice
from cxrmask.segment.preprocess import resize_grey, resize_mask
from cxrmask.segment.qc import flag_precision_recall, no_truth_signals


def names(args: argparse.Namespace) -> list[str]:
    """The image file names to read: a split of the bundle's summary, or every image with a reference."""
    if args.split:
        summary = json.loads(args.model.with_suffix(".summary.json").read_text())
        return [f"{key}.png" for key in summary["splits"][args.split]]
    return sorted(p.name for p in args.masks.glob("*.png") if (args.images / p.name).is_file())


def add_reference_arguments(parser: argparse.ArgumentParser) -> None:
    """The bundle, the images with their reference masks, and the split to read (any benchmark's)."""
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--images", type=Path, required=True)
    parser.add_argument("--masks", type=Path, required=True)
    parser.add_argument("--split", choices=("train", "val", "test"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_reference_arguments(parser)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    torch.set_num_threads(1)
    bundle = SegmenterBundle.load(args.model)
    model, auto, reference = bundle.model.eval(), bundle.prompt, bundle.qc
    files = names(args)
    size = model.input_size
    images = np.stack([resize_grey(read_grey(args.images / name), size) for name in files])
    truth = [read_mask(args.masks / name) for name in files]
    embeddings = encode_all(model, images)
    values: dict[str, list[float]] = {"true": [], "certainty": [], "head": [], "prompt": [], "self_dice": []}
    flags = []
    with torch.no_grad():
        for start in range(0, len(embeddings), 16):
            batch = embeddings[start : start + 16].float()
            logits, boxes = auto(model, batch)
            signals = no_truth_signals(model, auto.head, batch, logits, boxes)
            for i, (logit, (raw, mask, sure, agreement, on_map)) in enumerate(
                zip(logits.float().numpy(), signals, strict=True)
            ):
                probability = 1 / (1 + np.exp(-logit))
                values["true"].append(dice(mask, resize_mask(truth[start + i], mask.shape[0])))
                values["certainty"].append(sure)
                values["prompt"].append(agreement)
                values["head"].append(on_map)
                expected = 2 * (probability * mask).sum() / (probability.sum() + mask.sum())
                values["self_dice"].append(float(expected))
                flags.append(reference.assess(raw, mask, sure, agreement, on_map)["flag"])
    true = np.array(values.pop("true"))
    precision, recall = flag_precision_recall(np.array(flags), true, reference.bad_dice)
    print(
        json.dumps(
            {
                "n": len(true),
                "n_bad": int((true < reference.bad_dice).sum()),
                "spearman": {key: float(spearmanr(v, true).statistic) for key, v in values.items()},
                "calibration": reference.to_dict(),
                "flagged": int(np.sum(flags)),
                "flag_precision": precision,
                "flag_recall": recall,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
