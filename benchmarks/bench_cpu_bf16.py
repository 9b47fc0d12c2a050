"""bf16 autocast on this CPU against fp32, measured in the same run: the LiteMedSAM encoder and a ResNet
training step, the two costs of the demo on a CPU.

    python benchmarks/bench_cpu_bf16.py [--threads 1] [--repeats 3]

Prints whether the CPU computes bf16 natively (``cxrmask.torchutil.cpu_has_bf16``), seconds per call in
fp32 and under bf16 autocast, their ratio, and the encoder embeddings' relative error in bf16. On a CPU
without native bf16 the pipeline keeps fp32, and this shows why (the ratio drops below 1).
"""

from __future__ import annotations

import argparse
import json
import time

import timm
import torch
import torch.nn.functional as F

from cxrmask.config import SegmenterSettings
from cxrmask.segment.models import load_segmenter
from cxrmask.torchutil import cpu_has_bf16


def _seconds(call, repeats: int) -> float:
    call()  # warm-up
    started = time.perf_counter()
    for _ in range(repeats):
        call()
    return (time.perf_counter() - started) / repeats


def _under(bf16: bool, call):
    def run():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            return call()

    return run


def encoder(repeats: int) -> dict[str, float]:
    """LiteMedSAM (bundled weights) encoding one 256-pixel image, as mask generation does on a CPU."""
    lite = SegmenterSettings(arch="litemedsam", checkpoint="bundled", image_size=256)
    model = load_segmenter(lite.spec, lite.checkpoint).eval()
    x = torch.rand(1, 3, 256, 256, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        fp32 = _seconds(_under(False, lambda: model.encode(x)), repeats)
        bf16 = _seconds(_under(True, lambda: model.encode(x)), repeats)
        ref, low = model.encode(x), _under(True, lambda: model.encode(x))().float()
    return {
        "fp32_s": fp32,
        "bf16_s": bf16,
        "speedup": fp32 / bf16,
        "relative_error": float((low - ref).norm() / ref.norm()),
    }


def train_step(repeats: int, backbone: str = "resnet10t") -> dict[str, float]:
    """One training step of the demo's classifier: batch 16 of 128-pixel grey images, five labels."""
    torch.manual_seed(0)
    model = timm.create_model(backbone, pretrained=False, num_classes=5, in_chans=1)
    optimizer = torch.optim.AdamW(model.parameters())
    x, y = torch.randn(16, 1, 128, 128), torch.rand(16, 5)

    def step():
        loss = F.binary_cross_entropy_with_logits(model(x).float(), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    fp32 = _seconds(_under(False, step), repeats)
    bf16 = _seconds(_under(True, step), repeats)
    return {"backbone": backbone, "fp32_s": fp32, "bf16_s": bf16, "speedup": fp32 / bf16}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    report = {
        "native_bf16": cpu_has_bf16(),
        "threads": args.threads,
        "litemedsam_encoder": encoder(args.repeats),
        "train_step": train_step(args.repeats),
    }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
