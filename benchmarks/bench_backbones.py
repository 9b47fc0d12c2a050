"""Which backbones learn the demo: one original-image cell per backbone, on a finished demo run's caches.

    python benchmarks/bench_backbones.py --results results/demo_run [--backbones resnet10t densenet121 ...]

Each cell is trained exactly as the ``train_classifier`` rule trains it (the demo's classifier settings,
one thread, its stage function) into a scratch folder; prints per backbone the wall time, the best epoch,
the test macro AUROC and the shortcut label's AUROC on the test images and on their shifted twins.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

from cxrmask.config import load_config
from cxrmask.metrics import auroc
from cxrmask.stages.train_classifier import train_classifier

REPO = Path(__file__).resolve().parents[1]
DEFAULT = ["resnet10t", "resnet14t", "densenet121", "mobilenetv3_small_100", "regnetx_002", "efficientnet_b0"]


def demo_config():
    """config/config.yaml with config/demo.yaml merged over it, section by section, as Snakemake does."""
    values = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    for key, value in yaml.safe_load((REPO / "config" / "demo.yaml").read_text()).items():
        both = isinstance(value, dict) and isinstance(values.get(key), dict)
        values[key] = {**values[key], **value} if both else value
    return load_config(values)


def cell(results: Path, backbone: str, config, folder: Path) -> dict:
    settings = config.classifier.train
    size, label = settings.image_size, config.demo.shortcut_label
    names = ("p.csv", "ps.csv", "h.csv", "s.json", "m.pt", "r.json")
    started = time.perf_counter()
    summary = train_classifier(
        str(results / "cache" / f"images_{size}.npy"),
        str(results / "cache" / f"index_{size}.csv"),
        None,
        *[str(folder / name) for name in names],
        architecture=backbone,
        mask="original",
        seed=0,
        labels=config.nih.labels,
        settings=settings,
        device="cpu",
        threads=1,
    )
    test, twins = pd.read_csv(folder / "p.csv"), pd.read_csv(folder / "ps.csv")
    return {
        "backbone": backbone,
        "seconds": round(time.perf_counter() - started, 1),
        "best_epoch": summary["best_epoch"],
        "macro_auroc": round(summary["test_macro_auroc"], 3),
        f"{label}_test": round(auroc(test[f"true_{label}"], test[f"score_{label}"]), 3),
        f"{label}_twins": round(auroc(twins[f"true_{label}"], twins[f"score_{label}"]), 3)
        if len(twins)
        else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, required=True, help="a finished demo run's results folder")
    parser.add_argument("--backbones", nargs="+", default=DEFAULT)
    args = parser.parse_args()
    config = demo_config()
    for backbone in args.backbones:
        with tempfile.TemporaryDirectory() as folder:
            print(json.dumps(cell(args.results, backbone, config, Path(folder))), flush=True)


if __name__ == "__main__":
    main()
