"""Lung masks for a folder of a user's own X-rays, with the bundle's no-ground-truth prompt and QC.

Any PNG the readers accept works: any size, 8- or 16-bit, grey, RGB or
RGBA. Each mask is written at its image's size as 0/255, cleaned as the
workflow cleans masks, and gets a QC row (score, flag, reason).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from tqdm import tqdm

from cxrmask.atomic import write_csv
from cxrmask.errors import InputError
from cxrmask.imageio import read_grey, write_png
from cxrmask.segment.bundle import SegmenterBundle
from cxrmask.segment.postprocess import clean_mask
from cxrmask.segment.preprocess import resize_grey, to_model_input
from cxrmask.segment.qc import prompt_agreement

log = logging.getLogger(__name__)

SUFFIXES = (".png",)


def segment_image(
    bundle: SegmenterBundle, image: np.ndarray, device: torch.device
) -> tuple[np.ndarray, dict]:
    """Mask at the image's size and its QC row (without the image's name) for one 8-bit grey image."""
    model = bundle.model
    height, width = image.shape
    batch = torch.from_numpy(resize_grey(image, model.input_size))[None].to(device)
    with torch.no_grad():
        embeddings = model.encode(to_model_input(batch))
        logits, boxes = bundle.prompt(model, embeddings)
        agreement = float(prompt_agreement(model, embeddings, boxes)[0])
        full = F.interpolate(logits[:, None].float(), size=(height, width), mode="bilinear")[0, 0]
    small = logits[0].cpu().numpy() > 0
    row = bundle.qc.assess(small, clean_mask(small), agreement)
    mask = clean_mask(full.cpu().numpy() > 0)
    return mask, {"height": height, "width": width, **row}


def predict_folder(
    bundle: SegmenterBundle,
    images: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    device: torch.device,
) -> pd.DataFrame:
    """Segment every PNG in ``images`` into ``out_dir/<name>.png``; write and return ``out_dir/qc.csv``."""
    images, out_dir = Path(images), Path(out_dir)
    paths = sorted(p for p in images.iterdir() if p.suffix.lower() in SUFFIXES) if images.is_dir() else []
    if not paths:
        raise InputError(f"{images}: no PNG image found. Point --images at a folder of .png X-rays.")
    bundle.model.to(device).eval()
    if bundle.prompt.head is not None:
        bundle.prompt.head.to(device)
    rows = []
    for path in tqdm(paths, desc="segment", unit="image"):
        mask, row = segment_image(bundle, read_grey(path), device)
        name = path.stem + ".png"
        write_png(out_dir / name, mask)
        rows.append({"image": name, **row})
    table = pd.DataFrame(rows)
    write_csv(out_dir / "qc.csv", table)
    log.info("%d masks in %s; %d flagged by QC", len(table), out_dir, int(table["flag"].sum()))
    return table
