"""Segmenter encoder throughput: channels-last and folded batch norms against PyTorch's default, same run.

    python benchmarks/bench_segment.py [--arch litemedsam] [--repeats 5] [--threads 1]

The encoder is most of mask generation's cost. Its convolutions run faster on channels-last tensors
(oneDNN on CPUs, tensor cores on GPUs), which is what inference and fine-tuning use; for inference,
LiteMedSAM's convolution + batch-norm pairs are also folded into single convolutions
(``cxrmask.segment.fast.fold_batch_norms``; a SAM ViT has none). Prints seconds per image for each
(interleaved, median of the repeats), the ratios to the default, and the largest output differences.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch

from cxrmask.config import LITE_ARCH, LITE_IMAGE_SIZE, SegmenterSettings
from cxrmask.segment.fast import fold_batch_norms
from cxrmask.segment.models import load_segmenter


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="litemedsam")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    size = LITE_IMAGE_SIZE if args.arch == LITE_ARCH else 1024
    spec = SegmenterSettings(arch=args.arch, image_size=size, checkpoint=None).spec
    model = load_segmenter(spec, "bundled" if args.arch == "litemedsam" else None).eval()
    size = model.input_size
    x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    x_last = x.contiguous(memory_format=torch.channels_last)
    default_encoder = model.image_encoder
    folded_encoder = copy.deepcopy(default_encoder)
    folded = fold_batch_norms(folded_encoder)
    folded_encoder.to(memory_format=torch.channels_last)
    times = {"default": [], "channels_last": [], "folded": []}
    outputs = {}
    with torch.inference_mode():
        reference = default_encoder(x)
        for _ in range(args.repeats):
            default_encoder.to(memory_format=torch.contiguous_format)
            start = time.perf_counter()
            default_encoder(x)
            times["default"].append(time.perf_counter() - start)
            default_encoder.to(memory_format=torch.channels_last)
            start = time.perf_counter()
            outputs["channels_last"] = default_encoder(x_last)
            times["channels_last"].append(time.perf_counter() - start)
            start = time.perf_counter()
            outputs["folded"] = folded_encoder(x_last)
            times["folded"].append(time.perf_counter() - start)
    base = statistics.median(times["default"])
    print(f"{args.arch} encoder, {size}x{size} input, {args.threads} thread(s), median of {args.repeats}")
    print(f"default layout (baseline)          {base:7.3f} s/image")
    for name, label in (
        ("channels_last", "channels-last"),
        ("folded", f"channels-last, {folded} BN folded"),
    ):
        seconds = statistics.median(times[name])
        difference = float((outputs[name] - reference).abs().max())
        print(f"{label:<34} {seconds:7.3f} s/image {base / seconds:5.2f}x  max |difference| {difference:.2e}")


if __name__ == "__main__":
    main()
