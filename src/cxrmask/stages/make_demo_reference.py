"""Rule make_demo_reference: the demo's ground-truth lungs as a CheXmask file, the reference NIH gets from
CheXmask, so the demo runs the mask check the full study runs."""

from __future__ import annotations

import logging
from pathlib import Path

from tqdm import tqdm

from cxrmask.chexmask import write_chexmask
from cxrmask.errors import InputError
from cxrmask.imageio import read_mask

log = logging.getLogger(__name__)


def make_demo_reference(truth: str, chexmask: str) -> None:
    """Encode every ground-truth lung mask under ``truth`` into ``chexmask`` (CheXmask's NIH format)."""
    paths = sorted(Path(truth).glob("*.png"))
    if not paths:
        raise InputError(f"{truth}: no ground-truth lung masks to encode; rerun make_demo_data.")
    write_chexmask(chexmask, {path.name: read_mask(path) for path in tqdm(paths, desc="encode", unit="mask")})
    log.info("%d ground-truth lung masks written as %s", len(paths), chexmask)
