"""No-ground-truth prompts against the ground-truth box, on real X-rays, patient-disjoint.

    python benchmarks/bench_prompts.py --data DIR [--epochs 20] [--cache /tmp/emb.pt] [--out table.md]

DIR holds ``images/<id>.png``, ``masks/<id>.png`` and ``manifest.csv`` (``id``, ``patientid``), e.g. the
COVID-19 lung-mask set. Its patients are split train / val / test (60/20/20): train fits, val picks
the epoch, test is reported. LiteMedSAM's encoder runs once per image (embeddings cached to ``--cache``);
then, for the zero-shot decoder and decoders fine-tuned on ground-truth boxes (MedSAM's recipe) and on
inference-like prompts, every prompt is scored on the test split with MONAI's Dice, IoU and HD95:
the ground-truth box, the learned prior box, the prior refined by re-prompting, the lung-map head's box,
and the head's box refined. Masks are cleaned as the pipeline cleans them. Prints a Markdown table.
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

from cxrmask.config import FinetuneSettings
from cxrmask.segment.autoprompt import AutoPrompt, encode_all
from cxrmask.segment.boxhead import train_box_head
from cxrmask.segment.dataset import SegData, prepare
from cxrmask.segment.finetune import finetune
from cxrmask.segment.models import arch_spec, load_segmenter
from cxrmask.segment.pairs import find_pairs
from cxrmask.segment.postprocess import clean_mask
from cxrmask.segment.prompts import BoxPrior
from cxrmask.segment.scoring import mask_scores, summarise

log = logging.getLogger("bench_prompts")

PROMPTS = ("truth", "prior", "prior_refined", "head", "head_refined")


def load_data(root: Path, seed: int) -> SegData:
    """The whole set at LiteMedSAM's sizes, split by patient."""
    manifest = pd.read_csv(root / "manifest.csv", dtype={"id": str, "patientid": str})
    pairs = find_pairs(root, "images/{id}.png", ["masks/{id}.png"])
    groups = dict(zip(manifest["id"], manifest["patientid"], strict=True))
    return prepare(pairs, 256, 256, val_fraction=0.2, seed=seed, test_fraction=0.2, groups=groups)


def score(model, auto: AutoPrompt, embeddings: torch.Tensor, test: SegData) -> dict[str, dict[str, float]]:
    """Summary scores per prompt on the test items, and per-image Dice for later use."""
    out = {}
    with torch.no_grad():
        for prompt in PROMPTS:
            if prompt == "truth":
                logits = model.decode(embeddings, torch.from_numpy(test.boxes)[:, None])[:, 0]
            else:
                start, steps = prompt.split("_")[0], auto.steps if prompt.endswith("refined") else 0
                logits, _ = auto.with_options(start=start, steps=steps)(model, embeddings)
            masks = np.stack([clean_mask(item > 0) for item in logits.float().numpy()])
            out[prompt] = summarise(mask_scores(masks, test.masks))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/cxrmask_bench_prompts_embeddings.pt"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="also write the table (Markdown) and numbers (JSON) here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    data = load_data(args.data, args.seed)
    model = load_segmenter(arch_spec("litemedsam"), "bundled").eval()
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
        seed=args.seed,
    )
    log.info("box head trained in %.0f s", time.perf_counter() - started)
    auto = AutoPrompt(prior=prior, head=head, start="head", steps=3, margin=0.01)
    test_embeddings = embeddings[split["test"]].float()
    results = {"zero-shot": score(model, auto, test_embeddings, test)}
    recipes = {
        "fine-tuned, truth boxes": {"train_prompt": "truth", "select_on": "val_dice"},
        "fine-tuned, inference prompts": {"train_prompt": "inference", "select_on": "val_dice_prior_box"},
    }
    for name, recipe in recipes.items():
        model.load_state_dict(zero_state)
        settings = FinetuneSettings(
            mode="decoder", epochs=args.epochs, batch_size=8, lr=1e-4, amp=False, **recipe
        )
        started = time.perf_counter()
        result = finetune(model, data, prior, settings, torch.device("cpu"), args.seed, embeddings=embeddings)
        model.load_state_dict(result.state)
        model.eval()
        log.info("%s: best epoch %d in %.0f s", name, result.best["epoch"], time.perf_counter() - started)
        results[name] = score(model, auto, test_embeddings, test)
    rows = [
        {"model": model_name, "prompt": prompt, **numbers}
        for model_name, by_prompt in results.items()
        for prompt, numbers in by_prompt.items()
    ]
    table = pd.DataFrame(rows)
    header = f"test split: {counts['test']} images; train {counts['train']}, val {counts['val']} (by patient)"
    markdown = header + "\n\n" + table.to_markdown(index=False, floatfmt=".4f")
    print(markdown)
    if args.out:
        args.out.with_suffix(".md").write_text(markdown + "\n")
        args.out.with_suffix(".json").write_text(json.dumps({"counts": counts, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
