"""Rules of the data stage: demo generation, downloads, curation, the fine-tuning set."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from cxrmask import nih
from cxrmask.archive import extract
from cxrmask.atomic import atomic_dir, write_csv, write_json
from cxrmask.demo_data import make_demo_data
from cxrmask.download import fetch
from cxrmask.segment.dataset import prepare
from cxrmask.segment.models import arch_spec, spec_sizes
from cxrmask.segment.pairs import find_pairs
from cxrmask.segment.prompts import BoxPrior

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]


def demo_data(out_dir: PathLike, demo: Mapping[str, Any], threads: int = 1) -> None:
    """Generate the embedded demo dataset in the real sources' formats (same bytes for any ``threads``)."""
    summary = make_demo_data(Path(out_dir), **demo, workers=threads)
    log.info("demo data: %s", summary)


def download(source: str, dest: PathLike, sha256: str | None, lock_file: PathLike, settings: Mapping) -> None:
    """Fetch one source file (resumable, retried, checksum-verified)."""
    fetch(
        source,
        Path(dest),
        sha256=sha256,
        lock_file=Path(lock_file),
        retries=settings["retries"],
        timeout=settings["timeout"],
        backoff=settings["backoff"],
    )


def extract_archive(archive: PathLike, out_dir: PathLike) -> None:
    """Unpack one archive safely into ``out_dir`` (complete or absent), and any zip it contains.

    Mendeley's whole-dataset download is a zip of the dataset's own zips, so
    inner zips are unpacked next to themselves before the folder appears.
    """
    with atomic_dir(out_dir) as tmp:
        members = extract(Path(archive), tmp)
        for inner in sorted(tmp.rglob("*.zip")):
            members += extract(inner, inner.with_suffix(""))
            inner.unlink()
    log.info("extracted %d members of %s", len(members), archive)


def curate(
    labels_csv: PathLike,
    train_val: PathLike,
    test: PathLike,
    image_dirs: Sequence[PathLike],
    out_subset: PathLike,
    out_summary: PathLike,
    settings: Mapping[str, Any],
    seed: int,
) -> pd.DataFrame:
    """Select the study's NIH subset from the present images; write it (with each image's source archive)."""
    subset = nih.curate(
        nih.read_label_table(labels_csv),
        nih.read_split_list(train_val),
        nih.read_split_list(test),
        labels=settings["labels"],
        images=nih.find_images(image_dirs),
        no_finding=settings["no_finding"],
        val_fraction=settings["val_fraction"],
        views=settings["views"],
        seed=seed,
    )
    folders = [Path(d) for d in image_dirs]
    subset["source"] = [next(f.name for f in folders if Path(p).is_relative_to(f)) for p in subset["path"]]
    summary = nih.summarise(subset, settings["labels"])
    log.info("curated subset: %s", summary)
    write_csv(out_subset, subset)
    write_json(out_summary, summary)
    return subset


def seg_data(
    root: PathLike,
    out_data: PathLike,
    out_prior: PathLike,
    out_pairs: PathLike,
    seg_settings: Mapping[str, Any],
    segmenter: Mapping[str, Any],
    seed: int,
    on_bad: str,
) -> None:
    """Decode the lung-mask pairs at the segmenter's sizes, split them, learn the box prior."""
    pairs = find_pairs(root, seg_settings["images"], seg_settings["masks"])
    spec = arch_spec(segmenter["arch"], segmenter.get("image_size"), segmenter.get("encoder"))
    input_size, mask_size = spec_sizes(spec)
    data = prepare(pairs, input_size, mask_size, seg_settings["val_fraction"], seed, on_bad)
    prior = BoxPrior.fit(list(data.subset("train").masks), seg_settings["box_margin"])
    data.save(out_data)
    prior.save(out_prior)
    by_key = {pair.key: pair for pair in pairs}
    table = pd.DataFrame(
        {
            "key": data.keys,
            "image": [str(by_key[k].image) for k in data.keys],
            "masks": [";".join(map(str, by_key[k].masks)) for k in data.keys],
            "split": data.split,
        }
    )
    write_csv(out_pairs, table)
    log.info("%d pairs (%d val); box prior %s", len(table), int((table["split"] == "val").sum()), prior.whole)
