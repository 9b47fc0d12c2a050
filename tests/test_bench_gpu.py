"""The GPU benchmark runs end to end at tiny sizes on a CPU, so a one-shot GPU run does not die of a typo."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from tinysam import write_lung_set

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SCRIPT = Path(__file__).parents[1] / "benchmarks" / "bench_gpu.py"


def test_the_gpu_benchmark_runs_every_step_at_smoke_size(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("bench_gpu", SCRIPT)
    bench = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "bench_gpu", bench)  # its dataclasses look their module up
    spec.loader.exec_module(bench)
    write_lung_set(tmp_path / "lungs", [(120, 100), (100, 100), (90, 110)] * 3, seed=2)
    report = bench.main(["--lungs", str(tmp_path / "lungs"), "--smoke", "--json", str(tmp_path / "r.json")])
    assert (tmp_path / "r.json").is_file()
    for step in bench.STEPS:
        assert "error" not in report[step], (step, report[step])
    vit, tune = report["vit_b_generate_masks"], report["vit_b_finetune"]
    for lever in ("levers_off", "sdpa_bf16_weights", "fast"):
        assert "error" not in vit[lever], (lever, vit[lever])
        assert vit[lever]["images_per_s"] > 0
        # fp32 on a CPU: every lever's masks are the loop's (same weights, same preprocessing)
        assert vit[lever]["dice_vs_fp32_loop"]["min"] > 0.99
    assert vit["fast"]["images"] == 5 and vit["fast"]["encoder_only_images_per_s"] > 0
    assert vit["medsam_loop_images_per_s"] > 0
    assert tune["sdpa_checkpointing"]["epochs"] == 2 and tune["checkpointing_epoch_ratio"] > 0
    assert report["litemedsam_generate_masks"]["fast"]["images_per_s"] > 0
    assert report["classifier_resnet50"]["best_images_per_s"] > 0
    # every target has its line; only GPU memory is not measured on a CPU
    assert len(report["targets"]) == 7
    assert [line for line in report["targets"] if "not measured" in line] == [
        "fine-tuning batch 4, peak GiB: not measured"
    ]
