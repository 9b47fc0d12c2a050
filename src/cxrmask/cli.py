"""``cxrmask``: the fine-tuned lung segmenter on a user's own images, outside the study.

    cxrmask seg-finetune --root DIR --images 'images/{id}.png' --masks 'masks/{id}.png' --out MODEL.pt
    cxrmask seg-predict --model MODEL.pt --images DIR --out DIR

``seg-finetune`` splits the image/mask pairs into train / val / test (by
patient with ``--groups``), fine-tunes, and writes MODEL.pt (architecture,
weights, prompt prior and lung-map head, QC reference) and, beside it,
MODEL.summary.json with the test scores and which images each split holds.
A run that is stopped continues from its last epoch when started again with
the same arguments.
``seg-predict`` writes one 0/255 mask per image and ``qc.csv``.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from cxrmask.atomic import write_json
from cxrmask.config import LITE_ARCH, FinetuneSettings, InferenceSettings, SegmenterSettings, parse
from cxrmask.errors import CxrmaskError, InputError
from cxrmask.logs import setup_logging
from cxrmask.resume import resume_path
from cxrmask.segment.bundle import SegmenterBundle
from cxrmask.segment.dataset import prepare
from cxrmask.segment.fit import fit_segmenter
from cxrmask.segment.models import load_segmenter, spec_sizes
from cxrmask.segment.pairs import find_pairs
from cxrmask.segment.predict import predict_folder
from cxrmask.segment.prompts import BoxPrior
from cxrmask.torchutil import resolve_device, seed_everything, set_threads

log = logging.getLogger("cxrmask")


def _groups(path: Path | None, key: str, column: str) -> dict[str, str] | None:
    """Pair key -> patient id from a CSV, or None (each image its own patient)."""
    if path is None:
        return None
    table = pd.read_csv(path, dtype=str)
    missing = [name for name in (key, column) if name not in table]
    if missing:
        raise InputError(f"{path}: no column {missing}; name them with --group-key / --group-column.")
    return dict(zip(table[key], table[column], strict=True))


def seg_finetune(args: argparse.Namespace) -> dict:
    """Fine-tune and write MODEL.pt and MODEL.summary.json."""
    seed_everything(args.seed)
    size = 256 if args.arch == LITE_ARCH else 1024
    chosen = {"arch": args.arch, "checkpoint": args.checkpoint, "image_size": size}
    segmenter = parse(SegmenterSettings, chosen, where="seg-finetune")
    spec = segmenter.spec
    input_size, mask_size = spec_sizes(spec)
    pairs = find_pairs(args.root, args.images, args.masks)
    groups = _groups(args.groups, args.group_key, args.group_column)
    data = prepare(
        pairs,
        input_size,
        mask_size,
        args.val_fraction,
        args.seed,
        test_fraction=args.test_fraction,
        groups=groups,
    )
    model = load_segmenter(spec, args.checkpoint)
    prior = BoxPrior.fit(list(data.subset("train").masks), args.box_margin)
    chosen_fit = {
        "mode": args.mode,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "opacity_copies": args.opacity_copies,
        "head_fusion": args.head_fusion,
    }
    settings = parse(FinetuneSettings, chosen_fit, where="seg-finetune")
    checkpoint = resume_path(args.out)
    bundle, result = fit_segmenter(
        model, data, prior, settings, resolve_device(args.device), args.seed, checkpoint
    )
    bundle.save(args.out)
    summary_path = Path(args.out).with_suffix(".summary.json")
    splits = {name: sorted(data.keys[data.split == name].tolist()) for name in ("train", "val", "test")}
    write_json(summary_path, {**bundle.summary, "history": result.history, "splits": splits})
    checkpoint.unlink(missing_ok=True)
    log.info("wrote %s and %s", args.out, summary_path)
    return bundle.summary


def seg_predict(args: argparse.Namespace) -> pd.DataFrame:
    """Segment a folder with a bundle."""
    device = resolve_device(args.device)
    settings = InferenceSettings(
        prompt="auto",
        batch_size=args.batch_size if device.type == "cuda" else 1,
        num_workers=0,
        on_empty=args.on_empty,
        max_empty_fraction=1.0,
    )
    bundle = SegmenterBundle.load(args.model)
    return predict_folder(bundle, args.images, args.out, device, settings, truth=args.truth)


def parser() -> argparse.ArgumentParser:
    """The two sub-commands and their options."""
    top = argparse.ArgumentParser(prog="cxrmask", description=__doc__.splitlines()[0])
    commands = top.add_subparsers(dest="command", required=True)
    fit = commands.add_parser("seg-finetune", help="fine-tune the lung segmenter on image/mask pairs")
    fit.add_argument("--root", type=Path, required=True, help="folder the patterns are relative to")
    fit.add_argument(
        "--images", required=True, help="image pattern with a {wildcard}, e.g. 'images/{id}.png'"
    )
    fit.add_argument(
        "--masks", required=True, nargs="+", help="mask pattern(s), unioned, e.g. 'masks/{id}.png'"
    )
    fit.add_argument("--out", type=Path, required=True, help="MODEL.pt to write")
    fit.add_argument("--arch", default=LITE_ARCH, choices=(LITE_ARCH, "vit_b"))
    fit.add_argument("--checkpoint", default="bundled", help="pretrained weights: a path, or 'bundled'")
    fit.add_argument("--mode", default="decoder", choices=("decoder", "full"))
    fit.add_argument("--epochs", type=int, default=20)
    fit.add_argument("--batch-size", type=int, default=8)
    fit.add_argument("--lr", type=float, default=1e-4)
    fit.add_argument(
        "--opacity-copies",
        type=int,
        default=FinetuneSettings().opacity_copies,
        help="painted copies of each training image with opacities inside its lungs (0: none)",
    )
    fit.add_argument(
        "--head-fusion",
        type=float,
        default=FinetuneSettings().head_fusion,
        help="weight of the lung-map head's logits added to the decoder's in the masks (0: decoder alone)",
    )
    fit.add_argument("--val-fraction", type=float, default=0.2)
    fit.add_argument("--test-fraction", type=float, default=0.2)
    fit.add_argument("--box-margin", type=float, default=0.03, help="widening of the prior box, of the side")
    fit.add_argument(
        "--groups", type=Path, help="CSV naming each image's patient, for a patient-disjoint split"
    )
    fit.add_argument("--group-key", default="id", help="its column holding the pattern's wildcard value")
    fit.add_argument("--group-column", default="patientid", help="its column holding the patient id")
    predict = commands.add_parser("seg-predict", help="segment every PNG in a folder")
    predict.add_argument("--model", type=Path, required=True, help="MODEL.pt from seg-finetune")
    predict.add_argument("--images", type=Path, required=True, help="folder of PNG X-rays")
    predict.add_argument("--out", type=Path, required=True, help="folder for masks and qc.csv")
    predict.add_argument("--batch-size", type=int, default=16, help="images per encoder batch (GPU)")
    predict.add_argument(
        "--truth", type=Path, help="folder of reference masks named like the images: adds Dice to qc.csv"
    )
    predict.add_argument(
        "--on-empty",
        default="full_image",
        choices=("full_image", "fail"),
        help="an empty mask: write the whole image as mask (flagged in qc.csv), or stop",
    )
    for sub in (fit, predict):
        sub.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
        sub.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
        sub.add_argument("--seed", type=int, default=0)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cxrmask`` console script; errors print as one line and exit 1."""
    args = parser().parse_args(argv)
    setup_logging()
    set_threads(args.threads)
    try:
        result = seg_finetune(args) if args.command == "seg-finetune" else seg_predict(args)
    except CxrmaskError as exc:
        log.error("%s", exc)
        return 1
    if args.command == "seg-finetune":
        log.info("test scores of the fine-tuned model by prompt: %s", json.dumps(result["test"]["finetuned"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
