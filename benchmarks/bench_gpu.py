"""GPU check and throughput of the segmentation and classification paths, each against a baseline.

    python benchmarks/bench_gpu.py --lungs DIR [--json FILE]

Needs a CUDA GPU. DIR holds real chest X-rays and lung masks as ``images/{id}.png`` and
``masks/{id}.png`` (the layout of the real-anatomy test set). Everything runs through the
project's own library code, as the workflow's jobs do:

1. LiteMedSAM (real pretrained weights) on the GPU with bf16 autocast against the CPU in fp32,
   same images and boxes: mask agreement (Dice) and images per second.
2. LiteMedSAM fully fine-tuned on the GPU (``finetune``): zero-shot and fine-tuned held-out Dice.
3. MedSAM ViT-B at 1024 (segment_anything's architecture; random weights, as speed does not depend
   on them): encoder throughput at batch 1 in fp32 and the default layout (baseline) against the
   inference settings (batch ``segment.batch_size``, bf16, channels-last); one full fine-tuning
   epoch (encoder and decoder) with its peak memory; ``generate_masks`` end to end (decode, encode,
   decode, post-process, write) in images per second.
4. A ResNet-50 classifier (``train_classifier``) in fp32 with the default layout (baseline) against
   bf16 channels-last: seconds per epoch after the first.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from cxrmask.classify.train import SplitData, train_classifier
from cxrmask.config import SegmenterSettings, TrainSettings
from cxrmask.segment.dataset import prepare
from cxrmask.segment.finetune import FinetuneSettings, batch_dice, finetune
from cxrmask.segment.inference import InferenceSettings, generate_masks
from cxrmask.segment.models import load_segmenter
from cxrmask.segment.pairs import find_pairs
from cxrmask.segment.preprocess import to_model_input
from cxrmask.segment.prompts import BoxPrior
from cxrmask.torchutil import autocast

log = logging.getLogger("bench_gpu")
STEPS = ("litemedsam_gpu_vs_cpu", "litemedsam_finetune_gpu", "medsam_vit_b", "classifier_resnet50")


def _timed(fn, repeats: int) -> float:
    """Median seconds of ``fn()`` after one warm-up, with the GPU synchronised around each call."""
    fn()
    times = []
    for _ in range(repeats):
        torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def lite_agreement(data, device: torch.device) -> dict:
    """LiteMedSAM masks on the GPU (bf16) against the CPU (fp32) for the same images and boxes."""
    model = load_segmenter(SegmenterSettings(arch="litemedsam", image_size=256).spec, "bundled").eval()
    images = to_model_input(torch.from_numpy(data.images))
    boxes = torch.from_numpy(data.boxes)[:, None]

    def run(dev: torch.device, amp: bool, batch: int) -> torch.Tensor:
        model.to(dev)
        out = []
        with torch.inference_mode():
            for start in range(0, len(images), batch):
                with autocast(dev, amp):
                    emb = model.encode(images[start : start + batch].to(dev))
                    out.append(model.decode(emb, boxes[start : start + batch].to(dev))[:, 0].float().cpu())
        return torch.cat(out)

    start = time.perf_counter()
    cpu = run(torch.device("cpu"), False, 1)
    cpu_seconds = time.perf_counter() - start
    run(device, True, 16)
    torch.cuda.synchronize()
    start = time.perf_counter()
    gpu = run(device, True, 16)
    gpu_seconds = time.perf_counter() - start
    truth = torch.from_numpy(data.masks)
    return {
        "images": len(images),
        "dice_gpu_bf16_vs_cpu_fp32": float(batch_dice(gpu, cpu > 0).mean()),
        "dice_vs_truth_cpu": float(batch_dice(cpu, truth).mean()),
        "dice_vs_truth_gpu": float(batch_dice(gpu, truth).mean()),
        "cpu_images_per_s": len(images) / cpu_seconds,
        "gpu_images_per_s": len(images) / gpu_seconds,
        "gpu_over_cpu": cpu_seconds / gpu_seconds,
    }


def lite_finetune(data, prior: BoxPrior, device: torch.device) -> dict:
    """Full LiteMedSAM fine-tuning on the GPU: zero-shot against best held-out Dice."""
    model = load_segmenter(SegmenterSettings(arch="litemedsam", image_size=256).spec, "bundled")
    settings = FinetuneSettings(mode="full", epochs=8, batch_size=8, lr=5e-5)
    start = time.perf_counter()
    result = finetune(model, data, prior, settings, device, seed=0)
    return {
        "train_images": int((data.split == "train").sum()),
        "val_images": int((data.split == "val").sum()),
        "zero_shot_val_dice": result.zero_shot["val_dice"],
        "zero_shot_val_dice_prior_box": result.zero_shot["val_dice_prior_box"],
        "best_val_dice": result.best["val_dice"],
        "best_val_dice_prior_box": result.best["val_dice_prior_box"],
        "best_epoch": result.best["epoch"],
        "seconds": time.perf_counter() - start,
    }


def vit_b(pairs, prior: BoxPrior, device: torch.device) -> dict:
    """MedSAM ViT-B encoder throughput, one full fine-tuning epoch, and end-to-end mask generation."""
    spec = SegmenterSettings().spec
    model = load_segmenter(spec, None).to(device).eval()
    batch = 16  # config/config.yaml's segment.batch_size
    size = model.input_size
    x1 = torch.rand(1, 3, size, size, device=device)
    xb = torch.rand(batch, 3, size, size, device=device)
    encoder = model.image_encoder

    def baseline_step():
        with torch.inference_mode():
            encoder(x1)

    def inference_step():
        with torch.inference_mode(), autocast(device, True):
            model.encode(xb)

    # Layout changes happen outside inference mode, so the weights stay trainable for fine-tuning below.
    encoder.to(memory_format=torch.contiguous_format)
    baseline = _timed(baseline_step, 5)
    encoder.to(memory_format=torch.channels_last)
    ours = _timed(inference_step, 5) / batch
    out = {
        "encoder_s_per_image_b1_fp32": baseline,
        "encoder_s_per_image_inference": ours,
        "inference_batch": batch,
        "encoder_speedup": baseline / ours,
    }
    data = prepare(pairs[:24], size, model.mask_size, val_fraction=0.25, seed=0)
    torch.cuda.reset_peak_memory_stats()
    settings = FinetuneSettings(mode="full", epochs=1, batch_size=4)
    result = finetune(model, data, prior, settings, device)
    out["full_finetune_epoch_s"] = result.history[1]["seconds"]
    out["full_finetune_train_images"] = int((data.split == "train").sum())
    out["full_finetune_peak_gib"] = torch.cuda.max_memory_allocated() / 2**30
    images = [(path.name, path) for path in sorted(p.image for p in pairs)][:128]
    settings = InferenceSettings(
        batch_size=batch, num_workers=8, on_empty="full_image", max_empty_fraction=1.0
    )
    with tempfile.TemporaryDirectory() as workdir:
        generate_masks(model, images[:batch], prior, Path(workdir, "warm"), settings, device)
        torch.cuda.synchronize()
        start = time.perf_counter()
        generate_masks(model, images, prior, Path(workdir, "masks"), settings, device)
        torch.cuda.synchronize()
    out["generate_masks_images"] = len(images)
    out["generate_masks_images_per_s"] = len(images) / (time.perf_counter() - start)
    return out


def classifier(device: torch.device) -> dict:
    """ResNet-50 epochs: fp32 default layout (baseline) against bf16 channels-last."""
    rng = np.random.default_rng(0)
    labels = ["Mass", "Nodule", "Pneumonia", "Edema", "Fibrosis"]

    def split(n: int) -> SplitData:
        return SplitData(
            images=torch.from_numpy(rng.integers(0, 256, (n, 224, 224), dtype=np.uint8)),
            masks=torch.from_numpy(rng.integers(0, 2, (n, 224, 224), dtype=np.uint8)),
            targets=torch.from_numpy(rng.integers(0, 2, (n, len(labels))).astype(np.float32)),
        )

    train, val, test = split(2048), split(256), split(256)
    table = pd.DataFrame({"image": [f"{i}.png" for i in range(256)], "patient_id": 0, "No Finding": 0})
    out = {}
    for name, amp in (("fp32_default", False), ("bf16_channels_last", True)):
        settings = TrainSettings(
            pretrained=False, epochs=3, batch_size=32, patience=0, amp=amp, channels_last=amp
        )
        result = train_classifier("resnet50", train, val, test, table, labels, settings, device, seed=0)
        out[f"{name}_epoch_s"] = float(result.history["seconds"].iloc[1:].median())
    out["train_images"] = 2048
    out["speedup"] = out["fp32_default_epoch_s"] / out["bf16_channels_last_epoch_s"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lungs", type=Path, required=True)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--steps", nargs="+", choices=STEPS, help="run only these steps (default: all)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if not torch.cuda.is_available():
        raise SystemExit("bench_gpu needs a CUDA GPU; none is visible.")
    device = torch.device("cuda")
    torch.backends.cudnn.benchmark = True
    pairs = find_pairs(args.lungs, "images/{id}.png", ["masks/{id}.png"])
    data = prepare(pairs, 256, 256, val_fraction=0.4, seed=0)
    prior = BoxPrior.fit(list(data.subset("train").masks), margin=0.02)
    report = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "pairs": len(pairs)}
    steps = {
        "litemedsam_gpu_vs_cpu": lambda: lite_agreement(data.subset("val"), device),
        "litemedsam_finetune_gpu": lambda: lite_finetune(data, prior, device),
        "medsam_vit_b": lambda: vit_b(pairs, prior, device),
        "classifier_resnet50": lambda: classifier(device),
    }
    for name in args.steps or STEPS:
        step = steps[name]
        try:
            report[name] = step()
        except Exception as exc:  # report every step, even after one fails
            log.exception("%s failed", name)
            report[name] = {"error": f"{type(exc).__name__}: {exc}"}
        print(name, json.dumps(report[name], indent=1), flush=True)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
