"""Segmenter encoder throughput: channels-last memory format against PyTorch's default, same model, same run.

    python benchmarks/bench_segment.py [--arch litemedsam] [--repeats 5] [--threads 1]

The encoder is most of mask generation's cost. Its convolutions run faster on channels-last tensors
(oneDNN on CPUs, tensor cores on GPUs), which is what inference and fine-tuning use. Prints seconds per
image for both layouts (interleaved, median of the repeats), their ratio, and the largest output difference.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from cxrmask.config import LITE_ARCH, LITE_IMAGE_SIZE, SegmenterSettings
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
    times = {"default": [], "channels_last": []}
    with torch.inference_mode():
        reference = default_encoder(x)
        for _ in range(args.repeats):
            default_encoder.to(memory_format=torch.contiguous_format)
            start = time.perf_counter()
            default_encoder(x)
            times["default"].append(time.perf_counter() - start)
            default_encoder.to(memory_format=torch.channels_last)
            start = time.perf_counter()
            out = default_encoder(x_last)
            times["channels_last"].append(time.perf_counter() - start)
    base, fast = statistics.median(times["default"]), statistics.median(times["channels_last"])
    print(f"{args.arch} encoder, {size}x{size} input, {args.threads} thread(s), median of {args.repeats}")
    print(f"default layout (baseline)  {base:7.3f} s/image")
    print(f"channels-last (cxrmask)    {fast:7.3f} s/image")
    print(f"speed-up                   {base / fast:7.2f}x")
    print(f"max |difference|           {float((out - reference).abs().max()):.2e}")


if __name__ == "__main__":
    main()
