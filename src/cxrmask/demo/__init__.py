"""Generate the demo dataset: synthetic chest X-rays in the real sources' on-disk formats.

The demo runs every pipeline step offline, so it needs inputs that exercise
the steps the way real data would: an Airlangga-style folder of 256x256 BMP
images with lung masks (to fine-tune the segmenter), NIH-style 1024x1024 PNGs
with the real ``Data_Entry`` header and patient-wise split lists (to curate,
segment and classify), and the NIH images' true lung masks kept aside (to
score the segmenter).

Three properties make the demo's numbers mean something:

* The images look enough like radiographs that a pretrained medical SAM
  segments the lungs from a box: real lung outlines, the chest drawn around
  them (:mod:`~cxrmask.demo.anatomy`).
* Findings are drawn only inside the lungs, so masking keeps them, and they
  vary in size and contrast, so they are learnable but not trivially so
  (:mod:`~cxrmask.demo.findings`).
* A bright marker outside the lungs is correlated with one label (a shortcut
  a CNN can learn from the whole image), and the test images' shifted twins
  carry it independently of the label, so what a classifier owes to the
  marker shows up as AUROC lost on the twins (:mod:`~cxrmask.demo.cohort`).

Each image is described by a :class:`~cxrmask.demo.render.Case` and drawn
from it alone (:mod:`~cxrmask.demo.render`); :mod:`~cxrmask.demo.writers`
draws them in parallel and writes the files.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from cxrmask.atomic import atomic_dir
from cxrmask.config import DemoSettings
from cxrmask.demo.anatomy import load_lung_shapes
from cxrmask.demo.cohort import build_external_records, build_nih_records, build_seg_cases, summarise
from cxrmask.demo.writers import write_dataset

__all__ = ["make_demo_data"]

log = logging.getLogger(__name__)


def make_demo_data(out_dir: Path, settings: DemoSettings, workers: int | None = None) -> dict[str, Any]:
    """Write the whole demo dataset under ``out_dir`` (replaced as a whole, atomically); return a summary.

    ``settings`` arrives validated (ranges, the shortcut label), so nothing
    is checked again here. Everything follows from ``settings.seed``: two
    runs write byte-identical files, whatever ``workers`` (processes drawing
    images; default: one per CPU core).
    """
    workers = workers if workers is not None else os.cpu_count() or 1
    shapes = load_lung_shapes()
    rng = np.random.default_rng(settings.seed)
    seg_cases = build_seg_cases(rng, shapes, settings.n_seg_images)
    records = build_nih_records(rng, shapes, settings)
    external = build_external_records(shapes, settings)
    log.info(
        "demo data: %d Airlangga-style, %d NIH-style and %d PadChest-style images, %d lung shapes (seed %d)",
        len(seg_cases),
        len(records),
        len(external),
        len(shapes),
        settings.seed,
    )
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        write_dataset(tmp, seg_cases, records, external, settings, workers)
    summary = summarise(settings.seed, seg_cases, records, external)
    log.info("demo data written to %s: %s", out_dir, summary["files"])
    return summary
