"""GPU throughput of mask generation, fine-tuning and classifier training, each against a baseline.

    python benchmarks/bench_gpu.py --lungs DIR [--checkpoint medsam_vit_b.pth] [--json FILE]
    python benchmarks/bench_gpu.py --lungs DIR --smoke      # tiny sizes on a CPU: checks that it runs

DIR holds real chest X-rays and lung masks as ``images/{id}.png`` and ``masks/{id}.png`` (the
layout of the real-anatomy test set). The first 104 pairs (by name) fine-tune, and their training
masks give the box prior; the others are written once at NIH's 1024 x 1024 (so decoding, clean-up
and writing cost what they cost on NIH) and get masks. Everything runs through the project's own
library code, as the workflow's jobs do. Every figure is printed with its target
and with its ratio to a baseline measured in the same run, on the same machine:

1. ``vit_b_finetune``: full MedSAM ViT-B fine-tuning at batch 4: seconds per epoch and peak GPU
   memory with segment_anything's attention (the baseline), with SDPA attention, and with SDPA
   plus activation checkpointing (target: <= 16 GiB at <= 1.3x the baseline's epoch). The
   checkpointed run trains longest; its weights make the masks of step 2 (from ``--checkpoint``,
   MedSAM's weights, when given; from random weights otherwise, which a few epochs on these
   images turn into lung-shaped masks, enough to compare numerics).
2. ``vit_b_generate_masks``: ``generate_masks`` end to end (decode, resize, encode, decode masks,
   clean, write) with the fast settings (SDPA attention, bf16 weights, compiled encoder), against
   a MedSAM-style loop in the same run (one image at a time, fp32, segment_anything's attention,
   resize on the host) and against the levers off (segment_anything's attention, autocast only,
   not compiled). Targets: >= 250 images/s, >= 10x the loop, masks at Dice >= 0.995 against the
   loop's fp32 masks. The encoder alone is timed too, to show how far the host is the bound.
3. ``litemedsam_generate_masks``: the same with LiteMedSAM (real weights): fast settings against
   the levers off (target >= 500 images/s).
4. ``classifier_resnet50``: ``train_classifier`` at 224 x 224: fp32 at batch 32 (baseline) against
   the config's settings (bf16, channels-last), a larger batch, and the uint8 cache resident on the
   GPU (target >= 3,000 images/s).
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from cxrmask.classify.train import SplitData, train_classifier
from cxrmask.config import (
    BUNDLED,
    LITE_ARCH,
    LITE_IMAGE_SIZE,
    FinetuneSettings,
    InferenceSettings,
    SegmenterSettings,
    TrainSettings,
)
from cxrmask.imageio import read_grey, read_mask, write_png
from cxrmask.segment.autoprompt import AutoPrompt
from cxrmask.segment.dataset import load_pair, prepare
from cxrmask.segment.finetune import finetune
from cxrmask.segment.inference import generate_masks
from cxrmask.segment.models import load_segmenter
from cxrmask.segment.pairs import find_pairs
from cxrmask.segment.postprocess import clean_mask, dice
from cxrmask.segment.preprocess import resize_grey, resize_mask, to_model_input
from cxrmask.segment.prompts import BoxPrior
from cxrmask.torchutil import autocast

log = logging.getLogger("bench_gpu")
STEPS = ("vit_b_finetune", "vit_b_generate_masks", "litemedsam_generate_masks", "classifier_resnet50")
# (printed label, where the figure sits in the report, target, whether higher is better)
TARGET_ROWS = (
    ("generate_masks ViT-B images/s", ("vit_b_generate_masks", "fast", "images_per_s"), 250.0, True),
    ("  over the MedSAM-style fp32 loop", ("vit_b_generate_masks", "fast", "over_medsam_loop"), 10.0, True),
    (
        "  mean Dice against the loop's fp32 masks",
        ("vit_b_generate_masks", "fast", "dice_vs_fp32_loop", "mean"),
        0.995,
        True,
    ),
    ("fine-tuning batch 4, peak GiB", ("vit_b_finetune", "sdpa_checkpointing", "peak_gib"), 16.0, False),
    ("  epoch time over the 35 GiB run's", ("vit_b_finetune", "checkpointing_epoch_ratio"), 1.3, False),
    (
        "LiteMedSAM generate_masks images/s",
        ("litemedsam_generate_masks", "fast", "images_per_s"),
        500.0,
        True,
    ),
    ("ResNet-50 training images/s (best)", ("classifier_resnet50", "best_images_per_s"), 3000.0, True),
)
LABELS = ["Mass", "Nodule", "Pneumonia", "Edema", "Fibrosis"]


@dataclass(frozen=True)
class Scale:
    """Sizes of one run: the real one on a GPU, or tiny ones that check the script on a CPU."""

    vit: dict
    image_side: int
    batch: int
    mask_images: int
    loop_images: int
    levers_off_images: int
    finetune_train: int
    finetune_val: int
    finetune_epochs: int
    lite_batch: int
    lite_images: int
    classifier_side: int
    classifier_train: int
    classifier_batch: int
    classifier_large_batch: int
    classifier_epochs: int
    workers: int
    warm_batches: int  # generate_masks batches run before timing (the encoder compiles in them)
    repeats: int  # timed encoder calls


FULL = Scale(
    vit=SegmenterSettings(checkpoint=None).spec,
    image_side=1024,
    batch=16,
    mask_images=512,
    loop_images=48,
    levers_off_images=128,
    finetune_train=96,
    finetune_val=8,
    finetune_epochs=6,
    lite_batch=64,
    lite_images=768,
    classifier_side=224,
    classifier_train=4096,
    classifier_batch=32,
    classifier_large_batch=256,
    classifier_epochs=3,
    workers=8,
    warm_batches=2,
    repeats=5,
)
SMOKE = Scale(
    vit=SegmenterSettings(
        checkpoint=None,
        image_size=64,
        encoder={"embed_dim": 32, "depth": 2, "num_heads": 2, "global_attn_indexes": [1]},
    ).spec,
    image_side=96,
    batch=2,
    mask_images=5,
    loop_images=3,
    levers_off_images=3,
    finetune_train=4,
    finetune_val=2,
    finetune_epochs=2,
    lite_batch=1,
    lite_images=1,
    classifier_side=32,
    classifier_train=8,
    classifier_batch=4,
    classifier_large_batch=8,
    classifier_epochs=2,
    workers=0,
    warm_batches=0,
    repeats=1,
)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _peak_gib(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def _seconds(fn: Callable[[], object], device: torch.device) -> float:
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


@dataclass
class Bench:
    """What every step shares: the device, the sizes, the real images and their box prior."""

    device: torch.device
    scale: Scale
    pairs: list  # the fine-tuning pairs
    items: list[tuple[str, Path]]  # NIH-sized copies of the other images, for mask generation
    truth: Path
    prior: BoxPrior
    checkpoint: Path | None
    work: Path
    vit_state: dict | None = None

    def cycled(self, count: int) -> list[tuple[str, Path]]:
        """``count`` images, the real ones repeated under new names when there are fewer."""
        out = []
        for i in range(count):
            name, path = self.items[i % len(self.items)]
            out.append((name if i < len(self.items) else f"{i // len(self.items)}_{name}", path))
        return out

    def vit(self, sdpa_attention: bool):
        """MedSAM ViT-B from ``--checkpoint`` (or random weights), then the fine-tuned state if any."""
        model = load_segmenter(self.scale.vit, self.checkpoint, sdpa_attention=sdpa_attention)
        if self.vit_state is not None:
            model.load_state_dict(self.vit_state)
        return model


def nih_sized(pairs, out: Path, side: int) -> tuple[list[tuple[str, Path]], Path]:
    """Write each image and its mask at ``side`` x ``side`` (NIH's size), as the workflow would read them."""
    items = []
    for pair in pairs:
        image, mask = load_pair(pair)
        name = f"{pair.key}.png"
        write_png(out / "images" / name, resize_grey(image, side))
        write_png(out / "masks" / name, resize_mask(mask, side))
        items.append((name, out / "images" / name))
    return items, out / "masks"


def vit_b_finetune(bench: Bench) -> dict:
    """Epoch time and peak memory: segment_anything's attention, SDPA, SDPA with checkpointing."""
    scale, device = bench.scale, bench.device
    size = scale.vit["image_size"]
    data = prepare(bench.pairs, size, size // 4, val_fraction=scale.finetune_val / len(bench.pairs), seed=0)
    runs = {
        "segment_anything_attention": (False, False, 2),
        "sdpa": (True, False, 2),
        "sdpa_checkpointing": (True, True, scale.finetune_epochs),
    }
    out: dict = {"batch": 4, "train_images": int((data.split == "train").sum())}
    for name, (sdpa, checkpointing, epochs) in runs.items():
        model = load_segmenter(scale.vit, bench.checkpoint, sdpa_attention=sdpa)
        settings = FinetuneSettings(mode="full", epochs=epochs, batch_size=4, checkpointing=checkpointing)
        _reset_peak(device)
        result = finetune(model, data, bench.prior, settings, device, seed=0)
        seconds = [row["seconds"] for row in result.history[2:]]  # after the first, warm-up epoch
        out[name] = {
            "epoch_s": float(np.median(seconds)),
            "peak_gib": _peak_gib(device),
            "zero_shot_val_dice": result.zero_shot["val_dice"],
            "best_val_dice": result.best["val_dice"],
            "epochs": epochs,
        }
        if checkpointing:
            bench.vit_state = result.state
        del model, result
    baseline, fast = out["segment_anything_attention"], out["sdpa_checkpointing"]
    out["checkpointing_epoch_ratio"] = fast["epoch_s"] / baseline["epoch_s"]
    out["sdpa_epoch_ratio"] = out["sdpa"]["epoch_s"] / baseline["epoch_s"]
    if device.type == "cuda":
        out["checkpointing_memory_ratio"] = fast["peak_gib"] / baseline["peak_gib"]
    return out


def medsam_loop(model, items, prior: BoxPrior, out_dir: Path, device: torch.device) -> None:
    """MedSAM's own inference, image by image in fp32: read, resize, scale, encode, decode, clean, write."""
    model.to(device).eval()
    size = model.input_size
    box = torch.from_numpy(prior.boxes("box_prior", size, size).astype(np.float32)).to(device)
    with torch.inference_mode():
        for name, path in items:
            image = read_grey(path)
            x = to_model_input(torch.from_numpy(resize_grey(image, size))[None]).to(device)
            logits = model.decode(model.encode(x), box[None]).amax(dim=1)
            full = F.interpolate(logits[None], size=image.shape, mode="bilinear")[0, 0]
            write_png(out_dir / name, clean_mask((full > 0).cpu().numpy(), 2, True))


def _agreement(dir_a: Path, dir_b: Path, names: list[str]) -> dict:
    scores = [dice(read_mask(dir_a / name), read_mask(dir_b / name)) for name in names]
    return {"mean": float(np.mean(scores)), "min": float(np.min(scores)), "images": len(scores)}


def _generate(bench: Bench, model, items, settings: InferenceSettings, name: str) -> float:
    """Images per second of ``generate_masks`` after a warm-up call (the encoder compiles in it)."""
    warm = items[: bench.scale.warm_batches * settings.batch_size]
    if warm:
        generate_masks(model, warm, _prior_prompt(bench), bench.work / f"{name}_warm", settings, bench.device)
        shutil.rmtree(bench.work / f"{name}_warm")
    seconds = _seconds(
        lambda: generate_masks(model, items, _prior_prompt(bench), bench.work / name, settings, bench.device),
        bench.device,
    )
    return len(items) / seconds


def _prior_prompt(bench: Bench) -> AutoPrompt:
    """The learned lung box as the prompt, unrefined: the same boxes for every lever and the loop."""
    return AutoPrompt(prior=bench.prior, start="prior", steps=0)


def _encoder_images_per_s(bench: Bench, model, batch: int) -> float:
    """The encoder alone on device-resident batches (after ``_generate``: warm, compiled)."""
    size, device, repeats = model.input_size, bench.device, bench.scale.repeats
    x = torch.rand(batch, 3, size, size, device=device)
    with torch.inference_mode(), autocast(device, True):
        seconds = _seconds(lambda: [model.encode(x) for _ in range(repeats)], device)
    return batch * repeats / seconds


def _loop_rate(bench: Bench, reference, items: list, out_dir: Path) -> float:
    """Images per second of ``medsam_loop`` (after one warm-up image on a GPU)."""
    reference.image_encoder.to(memory_format=torch.contiguous_format)  # as MedSAM's script runs it
    if bench.scale.warm_batches:
        medsam_loop(reference, items[:1], bench.prior, bench.work / f"{out_dir.name}_warm", bench.device)
    seconds = _seconds(
        lambda: medsam_loop(reference, items, bench.prior, out_dir, bench.device), bench.device
    )
    return len(items) / seconds


def _mask_step(bench: Bench, prefix: str, make_model: Callable[[bool], object], batch: int, counts) -> dict:
    """A MedSAM-style fp32 loop (the baseline and the reference masks), then ``generate_masks`` per lever.

    The levers are added one at a time (levers off = segment_anything's
    attention, fp32 weights under autocast, not compiled: the code before
    them), each run in its own try so that one failure (a compiler error)
    still reports the others.
    """
    scale, device = bench.scale, bench.device
    # the loop's images are the first of every run's, so each run's masks compare with its masks
    loop_items = bench.items[: min(scale.loop_images, *counts)]
    loop_dir = bench.work / f"{prefix}_fp32_loop"
    names = [name for name, _ in loop_items]
    out: dict = {
        "batch": batch,
        "medsam_loop_images_per_s": _loop_rate(bench, make_model(False), loop_items, loop_dir),
        "dice_vs_truth_fp32_loop": _agreement(loop_dir, bench.truth, names),
    }
    # bf16 autocast is a GPU lever here; on a CPU (the smoke run) every run stays fp32, like the loop
    base = InferenceSettings(
        batch_size=batch,
        num_workers=scale.workers,
        on_empty="full_image",
        max_empty_fraction=1.0,
        min_lung_fraction=0.0,  # masks as decoded and cleaned, like the loop's: no full-image fallback
        amp=device.type == "cuda",
    )
    runs = {
        "levers_off": (False, base.model_copy(update=dict(bf16_weights=False, compile=False)), counts[0]),
        "sdpa_bf16_weights": (True, base.model_copy(update=dict(compile=False)), counts[1]),
        "fast": (True, base, counts[2]),  # + compiled (on CUDA; the config's default)
    }
    for name, (sdpa, settings, count) in runs.items():
        run_dir = f"{prefix}_{name}"
        try:
            model = make_model(sdpa)
            _reset_peak(device)
            rate = _generate(bench, model, bench.cycled(count), settings, run_dir)
            out[name] = {
                "images": count,
                "images_per_s": rate,
                "over_medsam_loop": rate / out["medsam_loop_images_per_s"],
                "peak_gib": _peak_gib(device),
                "dice_vs_fp32_loop": _agreement(bench.work / run_dir, loop_dir, names),
                "dice_vs_truth": _agreement(bench.work / run_dir, bench.truth, names),
            }
            if name == "fast":  # how far the host bounds the whole: the encoder alone, all levers on
                out[name]["encoder_only_images_per_s"] = _encoder_images_per_s(bench, model, batch)
            del model
        except Exception as exc:  # report the other levers even when one fails
            log.exception("%s %s failed", prefix, name)
            out[name] = {"error": f"{type(exc).__name__}: {exc}"}
    return out


def vit_b_generate_masks(bench: Bench) -> dict:
    """MedSAM ViT-B: generate_masks with each lever against a MedSAM-style fp32 loop."""
    scale = bench.scale
    if bench.vit_state is None and bench.checkpoint is None:
        log.warning("ViT-B masks from random weights: run vit_b_finetune first or give --checkpoint")
    counts = (scale.levers_off_images, scale.levers_off_images * 2, scale.mask_images)
    out = _mask_step(bench, "vit_b", bench.vit, scale.batch, counts)
    out["weights"] = "checkpoint" if bench.checkpoint else "random"
    out["fine_tuned_here"] = bench.vit_state is not None
    return out


def litemedsam_generate_masks(bench: Bench) -> dict:
    """LiteMedSAM (real weights): generate_masks with each lever against a MedSAM-style fp32 loop."""
    scale = bench.scale

    def lite(_sdpa: bool):  # TinyViT has its own attention: the SDPA lever does not apply
        return load_segmenter(SegmenterSettings(arch=LITE_ARCH, image_size=LITE_IMAGE_SIZE).spec, BUNDLED)

    counts = (max(1, scale.lite_images // 2), scale.lite_images, scale.lite_images)
    return _mask_step(bench, "litemedsam", lite, scale.lite_batch, counts)


def classifier_resnet50(bench: Bench) -> dict:
    """train_classifier images/s: fp32 at batch 32 (baseline), bf16 channels-last, larger batch, GPU cache."""
    scale, device = bench.scale, bench.device
    rng = np.random.default_rng(0)
    side = scale.classifier_side

    def split(n: int) -> SplitData:
        return SplitData(
            images=torch.from_numpy(rng.integers(0, 256, (n, side, side), dtype=np.uint8)),
            masks=torch.from_numpy(rng.integers(0, 2, (n, side, side), dtype=np.uint8)),
            targets=torch.from_numpy(rng.integers(0, 2, (n, len(LABELS))).astype(np.float32)),
        )

    def resident(data: SplitData) -> SplitData:
        return SplitData(data.images.to(device), data.masks.to(device), data.targets)

    n_val = max(scale.classifier_batch, scale.classifier_train // 16)
    train, val, test = split(scale.classifier_train), split(n_val), split(n_val)
    table = pd.DataFrame({"image": [f"{i}.png" for i in range(n_val)], "patient_id": 0, "No Finding": 0})
    base = TrainSettings(
        image_size=side,
        pretrained=False,
        epochs=scale.classifier_epochs,
        batch_size=scale.classifier_batch,
        patience=0,
    )
    runs = {
        "fp32_batch32": (base.model_copy(update=dict(amp=False, channels_last=False)), False),
        "config_bf16_channels_last": (base, False),
        "large_batch": (base.model_copy(update=dict(batch_size=scale.classifier_large_batch)), False),
        "large_batch_gpu_cache": (
            base.model_copy(update=dict(batch_size=scale.classifier_large_batch)),
            True,
        ),
    }
    out: dict = {"train_images": len(train.targets), "image_side": side}
    for name, (settings, on_gpu) in runs.items():
        data = [resident(part) for part in (train, val, test)] if on_gpu else [train, val, test]
        _reset_peak(device)
        result = train_classifier("resnet50", *data, table, LABELS, settings, device, seed=0)
        epoch_s = float(result.history["seconds"].iloc[1:].median())
        out[name] = {
            "batch": settings.batch_size,
            "images_per_s": len(train.targets) / epoch_s,
            "peak_gib": _peak_gib(device),
        }
    baseline = out["fp32_batch32"]["images_per_s"]
    for name in runs:
        out[name]["over_fp32_batch32"] = out[name]["images_per_s"] / baseline
    out["best_images_per_s"] = max(out[name]["images_per_s"] for name in runs)
    return out


def targets(report: dict) -> list[str]:
    """One line per target of the study's GPU work: figure, target, met or not."""
    rows = []
    for label, path, target, higher in TARGET_ROWS:
        value: object = report
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if value is None:
            rows.append(f"{label}: not measured")
            continue
        met = value >= target if higher else value <= target
        sign = ">=" if higher else "<="
        rows.append(f"{label}: {value:.4g} ({sign} {target:g}: {'met' if met else 'NOT met'})")
    return rows


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lungs", type=Path, required=True, help="images/{id}.png and masks/{id}.png")
    parser.add_argument("--checkpoint", type=Path, help="MedSAM ViT-B weights (default: random weights)")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--steps", nargs="+", choices=STEPS, help="run only these steps (default: all)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes on the CPU: checks that it runs")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # Random weights (no --checkpoint) are drawn from one seed: every run, and every lever, starts from the
    # same model, whatever the process drew before.
    torch.manual_seed(0)
    if args.smoke:
        device, scale = torch.device("cpu"), SMOKE
    elif torch.cuda.is_available():
        device, scale = torch.device("cuda"), FULL
        torch.backends.cudnn.benchmark = True
    else:
        raise SystemExit("bench_gpu needs a CUDA GPU (none is visible); --smoke runs tiny sizes on the CPU.")
    pairs = find_pairs(args.lungs, "images/{id}.png", ["masks/{id}.png"])
    report: dict = {
        "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "pairs": len(pairs),
        "smoke": args.smoke,
    }
    print("device", json.dumps({k: report[k] for k in ("device", "torch", "cuda")}), flush=True)
    with tempfile.TemporaryDirectory(prefix="bench_gpu_") as tmp:
        work = Path(tmp)
        # fine-tuning takes the first pairs (its train masks give the box prior); masks are made for the rest
        split = scale.finetune_train + scale.finetune_val
        tune_pairs, mask_pairs = pairs[:split], pairs[split:]
        if not mask_pairs:
            raise SystemExit(
                f"{args.lungs}: {len(pairs)} image/mask pairs; at least {len(tune_pairs) + 1} needed."
            )
        tune_data = prepare(tune_pairs, 256, 256, val_fraction=scale.finetune_val / len(tune_pairs), seed=0)
        prior = BoxPrior.fit(list(tune_data.subset("train").masks), margin=0.02)
        items, truth = nih_sized(mask_pairs, work / "nih", scale.image_side)
        bench = Bench(device, scale, tune_pairs, items, truth, prior, args.checkpoint, work)
        steps = {name: globals()[name] for name in STEPS}
        for name in args.steps or STEPS:
            started = time.perf_counter()
            try:
                report[name] = {**steps[name](bench), "step_s": time.perf_counter() - started}
            except Exception as exc:  # report every step, even after one fails
                log.exception("%s failed", name)
                report[name] = {"error": f"{type(exc).__name__}: {exc}"}
            print(name, json.dumps(report[name], indent=1), flush=True)
            report["targets"] = targets(report)
            if args.json:  # after every step, so a run cut short keeps what it measured
                args.json.write_text(json.dumps(report, indent=1))
    print("\n".join(["targets", *report["targets"]]), flush=True)
    return report


if __name__ == "__main__":
    main()
