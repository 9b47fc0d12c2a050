"""No-ground-truth prompts against the ground-truth box, on real X-rays, patient-disjoint; QC against Dice.

    python benchmarks/bench_prompts.py --data DIR [--epochs 4] [--train-images 96] [--out /tmp/prompts]

DIR holds ``images/<id>.png``, ``masks/<id>.png`` and ``manifest.csv`` (``id``, ``patientid``), e.g. the
COVID-19 lung-mask set. Its patients are split train / val / test (60/20/20): train fits (at most
``--train-images`` of it, to bound CPU time), val picks the epoch, test is reported. LiteMedSAM's encoder
runs once per image (embeddings cached to ``--cache``, reused by a rerun); the lung-map head is trained on
the train embeddings. Then, for the zero-shot decoder and decoders fine-tuned on ground-truth boxes
(MedSAM's recipe) and on inference-like prompts, every prompt is scored on the test split with MONAI's
Dice, IoU and HD95 (pixels of the 256 grid): the ground-truth box, the learned prior box, the prior
refined by re-prompting, the head's box, and the head's box refined. Masks are cleaned as the pipeline
cleans them. Last, the QC score of each test mask (default prompt) is ranked against its true Dice.
Prints a Markdown table; ``--out`` also writes it with the numbers as JSON, after every model.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from cxrmask.config import FinetuneSettings, HeadSettings, SegmenterSettings
from cxrmask.segment.autoprompt import AutoPrompt, encode_all
from cxrmask.segment.boxhead import train_box_head
from cxrmask.segment.dataset import SegData, prepare
from cxrmask.segment.evaluation import evaluate_prompts
from cxrmask.segment.finetune import finetune
from cxrmask.segment.fit import calibrate_qc, qc_table, qc_validation
from cxrmask.segment.models import load_segmenter
from cxrmask.segment.pairs import find_pairs
from cxrmask.segment.prompts import BoxPrior

log = logging.getLogger("bench_prompts")

RECIPES = {
    "fine-tuned, truth boxes": {"train_prompt": "truth", "select_on": "val_dice"},
    "fine-tuned, inference prompts": {"train_prompt": "inference", "select_on": "val_dice_prior_box"},
}


def load_data(root: Path, seed: int, train_images: int) -> SegData:
    """The set at LiteMedSAM's sizes, split by patient; train items past ``train_images`` set aside."""
    manifest = pd.read_csv(root / "manifest.csv", dtype={"id": str, "patientid": str})
    pairs = find_pairs(root, "images/{id}.png", ["masks/{id}.png"])
    groups = dict(zip(manifest["id"], manifest["patientid"], strict=True))
    data = prepare(pairs, 256, 256, val_fraction=0.2, seed=seed, test_fraction=0.2, groups=groups)
    train = np.flatnonzero(data.split == "train")
    if len(train) > train_images:
        spare = np.random.default_rng(seed).choice(train, size=len(train) - train_images, replace=False)
        data.split[spare] = "spare"
    return data


def write(out: Path | None, counts: dict, rows: list[dict], qc: dict | None) -> str:
    """The Markdown table (and JSON beside it) of what is measured so far."""
    header = (
        f"test split: {counts['test']} images, train {counts['train']}, val {counts['val']} "
        "(patient-disjoint); HD95 in pixels of the 256x256 grid"
    )
    markdown = header + "\n\n" + pd.DataFrame(rows).to_markdown(index=False, floatfmt=".4f")
    if qc is not None:
        markdown += "\n\nQC on the test split (default prompt): " + json.dumps(qc)
    if out is not None:
        out.with_suffix(".md").write_text(markdown + "\n")
        out.with_suffix(".json").write_text(json.dumps({"counts": counts, "rows": rows, "qc": qc}, indent=1))
    return markdown


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--train-images", type=int, default=96)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/cxrmask_bench_prompts_embeddings.pt"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="write the table (Markdown) and numbers (JSON) here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    data = load_data(args.data, args.seed, args.train_images)
    lite = SegmenterSettings(arch="litemedsam", checkpoint="bundled", image_size=256)
    model = load_segmenter(lite.spec, lite.checkpoint).eval()
    zero_state = {key: value.clone() for key, value in model.state_dict().items()}
    embeddings = encode_all(model, data.images, args.cache)
    counts = {split: int((data.split == split).sum()) for split in ("train", "val", "test")}
    log.info("images per split %s", counts)
    split = {name: torch.from_numpy(data.split == name) for name in counts}
    train, val, test = (data.subset(name) for name in ("train", "val", "test"))
    prior = BoxPrior.fit(list(train.masks), margin=0.03)
    started = time.perf_counter()
    head, _ = train_box_head(
        embeddings[split["train"]].float(),
        torch.from_numpy(train.masks),
        embeddings[split["val"]].float(),
        torch.from_numpy(val.masks),
        HeadSettings(),
        seed=args.seed,
    )
    log.info("box head trained in %.0f s", time.perf_counter() - started)
    # the prompts themselves: masks unfused, as in the README's tables (bench_fusion.py adds the head)
    auto = AutoPrompt(prior=prior, head=head, start="head", steps=3, margin=0.01, fuse=0.0)
    test_embeddings = embeddings[split["test"]].float()
    rows: list[dict] = []

    def measure(name: str) -> None:
        for prompt, numbers in evaluate_prompts(model, auto, test_embeddings, test).items():
            rows.append({"model": name, "prompt": prompt, **numbers})
        print(write(args.out, counts, rows, None), flush=True)

    measure("zero-shot")
    for name, recipe in RECIPES.items():
        model.load_state_dict(zero_state)
        settings = FinetuneSettings(
            mode="decoder", epochs=args.epochs, batch_size=8, lr=1e-4, amp=False, patience=0, **recipe
        )
        started = time.perf_counter()
        result = finetune(model, data, prior, settings, torch.device("cpu"), args.seed, embeddings=embeddings)
        model.load_state_dict(result.state)
        model.eval()
        log.info("%s: best epoch %d in %.0f s", name, result.best["epoch"], time.perf_counter() - started)
        measure(name)
    bad_dice = FinetuneSettings().qc_bad_dice
    reference = calibrate_qc(model, auto, embeddings[split["val"]].float(), val.masks, bad_dice)
    qc_rows, masks = qc_table(model, auto, reference, test_embeddings)
    qc = qc_validation(qc_rows, masks, test.masks, bad_dice)
    print(write(args.out, counts, rows, qc), flush=True)


if __name__ == "__main__":
    main()
