"""The ``cxrmask`` command line: seg-finetune writes a self-contained MODEL.pt, seg-predict segments a folder
of PNGs of any size, bit depth and colour into masks at each image's size plus qc.csv.

Runs the real LiteMedSAM (bundled weights) on synthetic lungs, two epochs: the point is the tool's contract,
not the segmentation quality (tests/test_real_anatomy.py measures that on real X-rays).
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from tinysam import lung_image, write_lung_set

from cxrmask.cli import main
from cxrmask.config import FinetuneSettings
from cxrmask.resume import resume_path
from cxrmask.segment.bundle import SegmenterBundle

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("pairs")
    ids = write_lung_set(root, [(256, 240)] * 10, seed=1)
    # Two images per patient: the split must keep each pair together.
    pd.DataFrame({"id": ids, "patientid": [f"p{i // 2}" for i in range(len(ids))]}).to_csv(
        root / "patients.csv", index=False
    )
    out = tmp_path_factory.mktemp("model") / "MODEL.pt"
    args = ["seg-finetune", "--root", str(root), "--images", "images/{id}.png", "--masks", "masks/{id}.png"]
    args += ["--out", str(out), "--epochs", "2", "--groups", str(root / "patients.csv"), "--threads", "1"]
    assert main(args) == 0
    return out


def test_seg_finetune_writes_a_bundle_and_an_honest_summary(model_file):
    bundle = SegmenterBundle.load(model_file)
    assert bundle.model.arch["arch"] == "litemedsam"
    assert bundle.prompt.head is not None and bundle.prompt.start == "head"
    assert bundle.prompt.fuse == FinetuneSettings().head_fusion > 0  # the default travels in the file
    summary = json.loads(model_file.with_suffix(".summary.json").read_text())
    assert summary["n_train"] + summary["n_val"] + summary["n_test"] == 10
    assert summary["n_test"] % 2 == 0 and summary["n_val"] % 2 == 0
    splits = summary["splits"]
    assert [len(splits[name]) for name in ("train", "val", "test")] == [
        summary["n_train"],
        summary["n_val"],
        summary["n_test"],
    ]
    assert len(set().union(*splits.values())) == 10
    for model in ("zero_shot", "finetuned"):
        assert set(summary["test"][model]) == {"truth", "prior", "prior_refined", "head", "head_refined"}
        numbers = summary["test"][model]["head_refined"]
        assert 0 <= numbers["dice_p10"] <= numbers["dice_mean"] <= 1 and numbers["hd95_mean"] >= 0
    assert [row["epoch"] for row in summary["history"]] == [0, 1, 2]
    assert not resume_path(model_file).exists()


def write_variants(folder: Path) -> dict[str, tuple[int, int]]:
    """The same kind of X-ray as 8-bit grey, 16-bit grey, RGB and RGBA PNGs of several sizes."""
    rng = np.random.default_rng(7)
    sizes = {"grey8": (300, 260), "grey16": (512, 512), "rgb": (200, 330), "rgba": (257, 199)}
    for name, (height, width) in sizes.items():
        image, _ = lung_image(rng, height, width)
        if name == "grey16":
            Image.fromarray(image.astype(np.uint16) * 257).save(folder / f"{name}.png")
        elif name == "rgb":
            Image.fromarray(np.repeat(image[..., None], 3, axis=2)).save(folder / f"{name}.png")
        elif name == "rgba":
            rgba = np.concatenate(
                [np.repeat(image[..., None], 3, axis=2), np.full((*image.shape, 1), 255, np.uint8)], 2
            )
            Image.fromarray(rgba, mode="RGBA").save(folder / f"{name}.png")
        else:
            Image.fromarray(image).save(folder / f"{name}.png")
    return sizes


def test_seg_predict_masks_every_png_at_its_size_with_a_qc_row(model_file, tmp_path):
    images = tmp_path / "in"
    images.mkdir()
    sizes = write_variants(images)
    (images / "notes.txt").write_text("not an image")
    assert (
        main(
            [
                "seg-predict",
                "--model",
                str(model_file),
                "--images",
                str(images),
                "--out",
                str(tmp_path / "out"),
            ]
        )
        == 0
    )
    qc = pd.read_csv(tmp_path / "out" / "qc.csv")
    assert sorted(qc["image"]) == sorted(f"{name}.png" for name in sizes)
    for name, (height, width) in sizes.items():
        mask = np.array(Image.open(tmp_path / "out" / f"{name}.png"))
        assert mask.shape == (height, width) and mask.dtype == np.uint8
        assert set(np.unique(mask)) <= {0, 255}
    assert {"qc_score", "flag", "reason", "agreement", "lung_fraction", "balance", "solidity"} <= set(qc)
    assert qc["qc_score"].between(0, 1).all()


def test_errors_are_one_line_and_exit_1(tmp_path, capfd):
    assert (
        main(
            [
                "seg-predict",
                "--model",
                str(tmp_path / "none.pt"),
                "--images",
                str(tmp_path),
                "--out",
                str(tmp_path),
            ]
        )
        == 1
    )
    assert "model file not found. Make one with `cxrmask seg-finetune`" in capfd.readouterr().err
    not_a_bundle = tmp_path / "plain.pt"
    torch.save({"model": {}}, not_a_bundle)
    assert (
        main(["seg-predict", "--model", str(not_a_bundle), "--images", str(tmp_path), "--out", str(tmp_path)])
        == 1
    )
    error = capfd.readouterr().err
    assert "not a cxrmask segmenter bundle" in error and "Traceback" not in error
    older = tmp_path / "older.pt"
    torch.save({"meta": {"format": "cxrmask-segmenter/1"}, "model": {}}, older)
    command = ["seg-predict", "--model", str(older), "--images", str(tmp_path), "--out", str(tmp_path)]
    assert main(command) == 1
    error = capfd.readouterr().err
    assert "of another cxrmask version (format 'cxrmask-segmenter/1'" in error and "seg-finetune" in error


def test_the_console_script_is_declared():
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"cxrmask": "cxrmask.cli:main"}


def test_weights_that_do_not_fit_the_arch_are_a_one_line_error(tmp_path, capfd):
    args = ["seg-finetune", "--root", str(tmp_path), "--images", "i/{id}.png", "--masks", "m/{id}.png"]
    assert main([*args, "--out", str(tmp_path / "m.pt"), "--arch", "vit_b"]) == 1
    error = capfd.readouterr().err
    assert "'bundled' weights exist only for arch litemedsam" in error and "Traceback" not in error


def test_seg_predict_scores_its_masks_against_reference_masks(model_file, tmp_path):
    ids = write_lung_set(tmp_path, [(256, 240)] * 3, seed=7)
    (tmp_path / "masks" / f"{ids[0]}.png").unlink()  # one image without a reference
    out = tmp_path / "out"
    args = [
        "seg-predict",
        "--model",
        str(model_file),
        "--images",
        str(tmp_path / "images"),
        "--out",
        str(out),
    ]
    assert main([*args, "--truth", str(tmp_path / "masks")]) == 0
    qc = pd.read_csv(out / "qc.csv").set_index("image")
    assert np.isnan(qc.loc[f"{ids[0]}.png", "dice"])
    for name in ids[1:]:
        mask = np.array(Image.open(out / f"{name}.png")) > 0
        truth = np.array(Image.open(tmp_path / "masks" / f"{name}.png")) > 0
        expected = 2 * (mask & truth).sum() / (mask.sum() + truth.sum())
        assert qc.loc[f"{name}.png", "dice"] == pytest.approx(expected)
    assert main([*args, "--truth", str(tmp_path / "nowhere")]) == 1
