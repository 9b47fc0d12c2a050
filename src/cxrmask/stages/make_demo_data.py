"""Rule make_demo_data: the embedded demo dataset, in the real sources' on-disk formats."""

from __future__ import annotations

import logging
from pathlib import Path

from cxrmask.config import DemoSettings
from cxrmask.demo import make_demo_data as generate
from cxrmask.errors import InputError

log = logging.getLogger(__name__)


def make_demo_data(
    labels: str,
    train_val: str,
    test: str,
    shifted: str,
    images: str,
    truth: str,
    seg: str,
    padchest_table: str,
    padchest_images: str,
    settings: DemoSettings,
    threads: int,
) -> None:
    """Generate the whole demo under the folder the outputs share (same bytes for any ``threads``); the
    PadChest-style collection is there for ``test_sets`` (no rows with ``demo.n_external: 0``)."""
    root = Path(labels).parents[1]
    summary = generate(root, settings, workers=threads)
    written = (labels, train_val, test, shifted, images, truth, seg, padchest_table, padchest_images)
    missing = [path for path in written if not Path(path).exists()]
    if missing:
        raise InputError(
            f"the demo generator did not write {missing}: the rule's outputs and its layout differ."
        )
    log.info("demo data: %s", summary)
