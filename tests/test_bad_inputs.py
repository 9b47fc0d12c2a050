"""Bad inputs planted in the tiny pipeline: each gives one error naming the file and the config key, or a
counted, logged skip; none gives a silently wrong result.

Planted in a copy of the shared tiny run: among the NIH images a truncated PNG, a 16-bit PNG and an image
with no chest on it (uniform black); curation is forced to rerun, and everything it feeds up to the masks
reruns. Then an Airlangga-style image loses its mask, and the fine-tuning data are prepared again (only
that: the pairing is what is tested, and a new fine-tuning would add minutes and no check).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from snakerun import overlay, snakemake, tiny_args

pytestmark = pytest.mark.slow


def _plant(results) -> dict[str, str]:
    """Plant the bad inputs; return the name of each."""
    subset = pd.read_csv(results / "nih" / "subset.csv").sort_values("image")
    train = subset.loc[subset["split"] == "train", "image"].tolist()
    corrupt, deep, blank = train[0], train[1], train[2]
    images = results / "demo" / "nih" / "images"
    data = (images / corrupt).read_bytes()
    (images / corrupt).write_bytes(data[: len(data) // 3])  # cut mid-stream, as by a failed copy
    grey = np.asarray(Image.open(images / deep), dtype=np.uint16)
    Image.fromarray(grey * 257).save(images / deep)  # the same picture in 16 bits, as many PACS export
    assert Image.open(images / deep).mode.startswith("I")
    shape = np.asarray(Image.open(images / blank)).shape
    Image.fromarray(np.zeros(shape, np.uint8)).save(images / blank)
    return {"corrupt": corrupt, "deep": deep, "blank": blank}


def _unpair(results) -> str:
    """Delete the mask of one fine-tuning image; return the image's path."""
    masks = sorted((results / "demo" / "airlangga").glob("*/masks/*.bmp"))
    masks[0].unlink()
    return str(masks[0].parent.parent / "images" / masks[0].name)


def _run(results, config: dict, check: bool, rerun: str = "curate_nih", targets: tuple[str, ...] = ()):
    targets = targets or (
        "cache/index_64.csv",
        "masks/tight/shard_0.csv",
        "masks/tight/shard_1.csv",
    )
    args = tiny_args(results, "--cores", "2", configs=(overlay(results.parent, "bad", config),))
    return snakemake(
        *args, "--forcerun", rerun, "--keep-going", *(results / target for target in targets), check=check
    )


def _logs(results) -> str:
    return "\n".join(path.read_text() for path in sorted((results / "logs").rglob("*.log")))


def test_planted_bad_inputs_fail_by_name_or_are_skipped_and_counted(tiny_copy):
    results = tiny_copy
    before = pd.read_csv(results / "cache" / "index_64.csv").set_index("image")
    cache_before = np.load(results / "cache" / "images_64.npy")
    qc_before = pd.concat(pd.read_csv(p) for p in sorted((results / "masks" / "tight").glob("shard_*.csv")))
    names = _plant(results)
    dice_before = qc_before.set_index("image").loc[names["deep"], "dice"]

    # data.on_bad_image: fail (the default) stops at the corrupt file, naming it and the key
    failed = _run(results, {"data": {"on_bad_image": "fail"}}, check=False)
    assert failed.returncode != 0
    logs = _logs(results)
    line = next(line for line in logs.splitlines() if names["corrupt"] in line and "error" in line.lower())
    assert "data.on_bad_image: skip" in line
    assert not (results / "cache" / "index_64.csv").exists()  # nothing half-written left looking finished

    # with skip: the corrupt image is counted, named and left out; the rest goes on
    _run(results, {"data": {"on_bad_image": "skip"}}, check=True)
    logs = _logs(results)
    index = pd.read_csv(results / "cache" / "index_64.csv").set_index("image")
    assert not index.loc[names["corrupt"], "ok"] and index["ok"].sum() == len(index) - 1
    assert "unreadable images get no mask (data.on_bad_image: skip)" in logs
    masks = {p.name for p in (results / "masks" / "tight").glob("shard_*/*.png")}
    assert names["corrupt"] not in masks and names["deep"] in masks

    # the 16-bit image is read as the same picture, stretched to 8 bits by its own range: its cache row
    # is a linear map of the 8-bit original's, and its lungs are found about as well (the stretch changes
    # the contrast the segmenter sees, so not pixel for pixel)
    cache = np.load(results / "cache" / "images_64.npy")
    row, row_before = index.loc[names["deep"], "cache_row"], before.loc[names["deep"], "cache_row"]
    assert np.corrcoef(cache[row].ravel(), cache_before[row_before].ravel())[0, 1] > 0.999
    qc = pd.concat(pd.read_csv(p) for p in sorted((results / "masks" / "tight").glob("shard_*.csv")))
    deep = qc.set_index("image").loc[names["deep"]]
    assert not deep["fallback"] and deep["dice"] > 0.7, (deep["dice"], dice_before)

    # no chest on the image: a mask is made, QC flags it with its reasons, and the log names it
    blank = qc.set_index("image").loc[names["blank"]]
    assert bool(blank["flag"]) and "lungs in one body" in blank["reason"]
    assert "estimated Dice" in blank["reason"]
    # the decoder is fairly sure of the shape it draws on a blank image, so its certainty ranks it with
    # the worst real masks, not below them; the lung-map head, which sees no lung there, sets it apart
    others = qc.set_index("image").drop(index=names["blank"])
    assert blank["qc_score"] < 0.93 and blank["qc_score"] < others["qc_score"].quantile(0.1)
    assert others["map_agreement"].min() > blank["map_agreement"]
    assert "QC flagged" in logs and "finetune.qc_bad_dice" in logs

    # the fine-tuning pair without its mask is left out, counted and named with the key that pairs them
    unpaired = _unpair(results)
    _run(results, {}, check=True, rerun="prepare_seg_data", targets=("segment/pairs.csv",))
    pairs = pd.read_csv(results / "segment" / "pairs.csv")
    assert unpaired not in set(pairs["image"]) and len(pairs) > 0
    assert f"first: {unpaired}" in _logs(results) and "seg_data.masks" in _logs(results)
