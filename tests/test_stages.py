"""The stages no other module calls directly, each on small inputs in the real formats, in seconds.

Each test runs ``cxrmask.stages.X.X`` as its rule would (paths in, paths out) and checks what the stage adds
to the library it calls: the files it writes, what they hold, and what it refuses.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from test_figures import make_auroc_table, make_delong_table, make_histories, make_predictions
from tinysam import write_lung_set

from cxrmask.config import DownloadSettings, FigureSettings, MlflowSettings, SegmenterSettings
from cxrmask.errors import ChecksumError, InputError
from cxrmask.figures import auroc_heatmap, delta_auroc
from cxrmask.imageio import write_png
from cxrmask.segment.dataset import SegData
from cxrmask.segment.prompts import BoxPrior
from cxrmask.stages.curate_nih import curate_nih
from cxrmask.stages.download import download
from cxrmask.stages.extract_nih_archive import extract_nih_archive
from cxrmask.stages.extract_seg_data import extract_seg_data
from cxrmask.stages.log_mlflow import log_mlflow
from cxrmask.stages.plot_auroc_heatmap import plot_auroc_heatmap
from cxrmask.stages.plot_delta_auroc import plot_delta_auroc
from cxrmask.stages.plot_mask_gallery import plot_mask_gallery
from cxrmask.stages.plot_roc import plot_roc
from cxrmask.stages.plot_training_curves import plot_training_curves
from cxrmask.stages.prepare_seg_data import prepare_seg_data
from cxrmask.tracking import RunRecorder

STYLE = FigureSettings(dpi=30)
NIH_HEADER = (
    "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,"
    "OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]"
)


def png(size: int = 16, value: int = 90) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((size, size), value, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


# ---- data ---------------------------------------------------------------------------------------------


def test_extract_nih_archive_unpacks_the_images_into_their_folder(tmp_path):
    archive = tmp_path / "images_001.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name in ("images/00000001_000.png", "images/00000002_000.png"):
            data = png()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    folder = tmp_path / "images_001"
    extract_nih_archive(str(archive), str(folder))
    assert sorted(p.name for p in folder.rglob("*.png")) == ["00000001_000.png", "00000002_000.png"]


def test_extract_seg_data_unpacks_a_zip_inside_the_zip(tmp_path):
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as z:
        z.writestr("set/normal/images/a.bmp", png())
        z.writestr("set/normal/masks/a.bmp", png(value=255))
    archive = tmp_path / "2jg8vfdmpm-1.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("dataset.zip", inner.getvalue())
    folder = tmp_path / "extracted"
    extract_seg_data(str(archive), str(folder))
    assert {p.name for p in folder.rglob("*.bmp")} == {"a.bmp"} and len(list(folder.rglob("*.bmp"))) == 2


def test_download_copies_a_local_source_and_locks_its_digest(tmp_path):
    source = tmp_path / "source" / "medsam_vit_b.pth"
    source.parent.mkdir()
    source.write_bytes(b"weights" * 100)
    dest, lock = tmp_path / "downloads" / "medsam_vit_b.pth", tmp_path / "downloads" / "sha256.lock.json"
    download(str(dest), str(source), None, str(lock), DownloadSettings())
    assert dest.read_bytes() == source.read_bytes()
    recorded = json.dumps(json.loads(lock.read_text()))
    assert hashlib.sha256(source.read_bytes()).hexdigest() in recorded
    source.write_bytes(b"other weights")  # the source changed under the same name: the lock refuses it
    dest.unlink()
    with pytest.raises(ChecksumError):
        download(str(dest), str(source), None, str(lock), DownloadSettings())


def test_curate_nih_writes_the_subset_with_each_images_archive_folder_and_the_counts(tmp_path):
    rows = [
        "00000001_000.png,Mass,0,1,58,M,PA,1024,1024,0.143,0.143",
        "00000002_000.png,No Finding,0,2,40,F,AP,1024,1024,0.143,0.143",
        "00000003_000.png,Hernia,0,3,61,F,PA,1024,1024,0.143,0.143",
        "00000004_000.png,Nodule|Edema,0,4,33,M,PA,1024,1024,0.143,0.143",
        "00000005_000.png,Pneumonia,0,5,70,M,PA,1024,1024,0.143,0.143",
    ]
    labels_csv = tmp_path / "Data_Entry_2017_v2020.csv"
    labels_csv.write_text("\n".join([NIH_HEADER, *rows]) + "\n")
    (tmp_path / "train_val_list.txt").write_text("00000001_000.png\n00000002_000.png\n00000003_000.png\n")
    (tmp_path / "test_list.txt").write_text("00000004_000.png\n00000005_000.png\n")
    folders = [tmp_path / "images_001", tmp_path / "images_002"]
    for index, row in enumerate(rows):
        (folders[index % 2] / "images").mkdir(parents=True, exist_ok=True)
        (folders[index % 2] / "images" / row.split(",")[0]).write_bytes(png())
    subset, summary = tmp_path / "subset.csv", tmp_path / "curation.json"
    curate_nih(
        str(labels_csv),
        str(tmp_path / "train_val_list.txt"),
        str(tmp_path / "test_list.txt"),
        None,
        [str(f) for f in folders],
        str(subset),
        str(summary),
        labels=["Mass", "Nodule", "Pneumonia", "Edema", "Fibrosis"],
        no_finding=None,
        views=["PA", "AP"],
        val_fraction=0.4,
        seed=0,
    )
    table = pd.read_csv(subset)
    assert list(table["image"]) == [
        "00000001_000.png",
        "00000002_000.png",
        "00000004_000.png",
        "00000005_000.png",
    ]
    assert list(table["source"]) == ["images_001", "images_002", "images_002", "images_001"]
    assert table.loc[table["image"] == "00000004_000.png", ["Nodule", "Edema", "Mass"]].values.tolist() == [
        [1, 1, 0]
    ]
    assert set(table.loc[table["image"].isin(["00000004_000.png", "00000005_000.png"]), "split"]) == {"test"}
    counts = json.loads(summary.read_text())
    assert counts and json.dumps(counts)  # written, and plain JSON


def test_prepare_seg_data_pairs_splits_and_learns_a_prior_inside_the_image(tmp_path):
    root = tmp_path / "rsua"
    write_lung_set(root, [(96, 96), (80, 100), (120, 90), (96, 96), (100, 80), (90, 120)], seed=2)
    (root / "images" / "orphan.png").write_bytes(png())  # an image without its mask: counted and left out
    data, prior, pairs = tmp_path / "seg_data.npz", tmp_path / "box_prior.json", tmp_path / "pairs.csv"
    prepare_seg_data(
        str(root),
        str(data),
        str(prior),
        str(pairs),
        "images/{id}.png",
        ["masks/{id}.png"],
        val_fraction=0.2,
        test_fraction=0.2,
        box_margin=0.03,
        segmenter=SegmenterSettings(arch="litemedsam", checkpoint="bundled", image_size=256),
        seed=0,
        on_bad="fail",
    )
    loaded = SegData.load(str(data))
    assert len(pd.read_csv(pairs)) == len(loaded) == 6
    assert set(loaded.split) == {"train", "val", "test"}
    assert loaded.images.shape[1:] == (256, 256)
    box = BoxPrior.load(str(prior)).boxes("box_prior", 256, 256)[0]
    assert 0 <= box[0] < box[2] <= 256 and 0 <= box[1] < box[3] <= 256


# ---- tracking -----------------------------------------------------------------------------------------


def test_log_mlflow_logs_each_record_once_and_lists_every_run(tmp_path):
    records = []
    for index in range(2):
        recorder = RunRecorder(
            "train_classifier", {"backbone": "b", "mask": "tight", "seed": index}, {"lr": 0.1}
        )
        recorder.log_metrics({"val_macro_auroc": 0.7 + index / 10}, 1)
        records.append(tmp_path / f"run{index}.json")
        recorder.save(records[-1])
    runs = tmp_path / "mlflow" / "runs.csv"
    log_mlflow([str(r) for r in records], str(runs), MlflowSettings(), str(tmp_path))
    first = pd.read_csv(runs)
    assert len(first) == 2 and first["logged"].all()
    log_mlflow([str(r) for r in records], str(runs), MlflowSettings(), str(tmp_path))
    again = pd.read_csv(runs)
    assert sorted(again["run_id"]) == sorted(first["run_id"]) and not again["logged"].any()


# ---- figures: the stage draws what the library draws from the same table ---------------------------------


def test_plot_auroc_heatmap_and_plot_delta_auroc_draw_the_tables_they_read(tmp_path):
    auroc, delong = tmp_path / "auroc.csv", tmp_path / "delong.csv"
    make_auroc_table().to_csv(auroc, index=False)
    make_delong_table().to_csv(delong, index=False)
    plot_auroc_heatmap(str(auroc), str(tmp_path / "heatmap.png"), STYLE)
    plot_delta_auroc(str(delong), str(tmp_path / "delta.png"), STYLE)
    auroc_heatmap(pd.read_csv(auroc), tmp_path / "heatmap_direct.png", STYLE)
    delta_auroc(pd.read_csv(delong), tmp_path / "delta_direct.png", STYLE)
    for name in ("heatmap", "delta"):
        assert (tmp_path / f"{name}.png").read_bytes() == (tmp_path / f"{name}_direct.png").read_bytes()


def write_cells(tmp_path: Path, tables: dict[str, pd.DataFrame], name: str) -> tuple[list[str], list[dict]]:
    paths, cells = [], []
    for condition, frame in tables.items():
        path = tmp_path / condition / name
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(path, index=False)
        paths.append(str(path))
        cells.append({"backbone": "resnet10t", "mask": condition, "seed": 0})
    return paths, cells


def test_plot_roc_and_plot_training_curves_draw_one_backbones_cells(tmp_path):
    predictions, cells = write_cells(tmp_path, make_predictions(), "predictions.csv")
    histories, _ = write_cells(tmp_path, make_histories(), "history.csv")
    labels = ["Mass", "Nodule", "Pneumonia", "Edema", "Fibrosis"]
    plot_roc(predictions, str(tmp_path / "roc.png"), cells, "resnet10t", labels, STYLE)
    plot_training_curves(histories, str(tmp_path / "training.png"), cells, "resnet10t", STYLE)
    for name in ("roc.png", "training.png"):
        with Image.open(tmp_path / name) as image:
            assert image.size[0] > 100 and image.size[1] > 50
    with pytest.raises(InputError):
        plot_roc(predictions, str(tmp_path / "bad.png"), cells, "resnet10t", ["Hernia"], STYLE)
    assert not (tmp_path / "bad.png").exists()


def test_plot_mask_gallery_draws_test_images_spread_over_the_split_with_their_masks(tmp_path):
    rows = []
    for index in range(7):
        name = f"{index:08d}_000.png"
        image = np.full((40, 50), 60 + 20 * index, dtype=np.uint8)
        tight = np.zeros((40, 50), dtype=bool)
        tight[8:32, 6 + index : 20 + index] = True
        write_png(tmp_path / "images" / name, image)
        write_png(tmp_path / "tight" / "shard_0" / name, tight)
        write_png(tmp_path / "loose" / "shard_0" / name, np.pad(tight[1:-1, 1:-1], 1, constant_values=True))
        split = "train" if index < 2 else "test"
        rows.append(
            {"image": name, "path": str(tmp_path / "images" / name), "split": split, "ok": index != 3}
        )
    index = tmp_path / "index.csv"
    pd.DataFrame(rows).to_csv(index, index=False)
    widths = {}
    for count in (1, 3):
        figure = tmp_path / f"gallery_{count}.png"
        plot_mask_gallery(
            str(index),
            [str(tmp_path / "tight" / "shard_0")],
            [str(tmp_path / "loose" / "shard_0")],
            None,
            str(figure),
            FigureSettings(dpi=30, gallery=count),
        )
        with Image.open(figure) as drawn:
            widths[count] = drawn.size[0]
    assert widths[3] > widths[1]  # three panels, not one
    (tmp_path / "tight" / "shard_0" / "00000004_000.png").unlink()  # a test image whose mask is missing
    with pytest.raises(InputError, match=r"test image 00000004_000\.png has no tight mask"):
        plot_mask_gallery(
            str(index),
            [str(tmp_path / "tight" / "shard_0")],
            [str(tmp_path / "loose" / "shard_0")],
            None,
            str(tmp_path / "gallery_missing.png"),
            FigureSettings(dpi=30, gallery=5),
        )
    assert not (tmp_path / "gallery_missing.png").exists()
