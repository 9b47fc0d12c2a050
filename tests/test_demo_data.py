"""The demo dataset generator: real on-disk formats, determinism, findings in the lungs, the shortcut."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydantic import ValidationError
from scipy import ndimage as ndi

from cxrmask.config import DemoSettings
from cxrmask.demo import make_demo_data
from cxrmask.demo.anatomy import load_lung_shapes
from cxrmask.demo.cohort import NihRecord, build_nih_records
from cxrmask.demo.render import render_case
from cxrmask.vocabulary import NIH_LABELS, STUDY_LABELS

# Written out here, not imported, so a change to the generator's constant cannot pass unnoticed.
REAL_HEADER = (
    "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,"
    "OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]"
)
# The real table's vocabulary (checked against it in test_nih).
KNOWN_LABELS = set(NIH_LABELS)
SMALL = DemoSettings(seed=3, n_seg_images=4, n_patients=4, max_images_per_patient=2)
# The shortcut design the record tests assert, spelt out rather than taken from the config's defaults.
RECORDS = DemoSettings(
    n_patients=100,
    max_images_per_patient=3,
    shortcut_label="Pneumonia",
    shortcut_rate_train=0.85,
    shortcut_rate_other=0.1,
    shortcut_rate_test=None,
    test_fraction=0.3,
)
# SHA-256 of every file the generator wrote before it was split into modules (pinned requirements), for two
# settings: one at the defaults below 512 px, one with every field changed and NIH images above the 512 px
# anatomy size. A dependency upgrade that changes these bytes changes the demo's results: say so when
# re-recording them.
CHECKSUMS = json.loads((Path(__file__).parent / "data" / "demo_sha256.json").read_text())["cases"]


def _digests(root: Path) -> dict[str, str]:
    """SHA-256 of every file under ``root``, keyed by relative path."""
    return {
        path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A small demo set at the real sizes, drawn in one process."""
    out = tmp_path_factory.mktemp("demo") / "data"
    summary = make_demo_data(out, SMALL, workers=1)
    return out, summary


@pytest.fixture(scope="module")
def records() -> list[NihRecord]:
    """Table rows and cases for a larger set, sampled without drawing any image."""
    return build_nih_records(np.random.default_rng(11), load_lung_shapes(), RECORDS)


def test_airlangga_files_are_256px_grey_bmp_with_binary_lung_masks(demo: tuple[Path, dict]) -> None:
    out, summary = demo
    images = sorted((out / "airlangga").glob("*/images/*.bmp"))
    assert len(images) == SMALL.n_seg_images == summary["files"]["airlangga_images"]
    assert {path.parent.parent.name for path in images} == {"Normal", "Abnormal"}
    for path in images:
        mask_path = path.parent.parent / "masks" / path.name
        with Image.open(path) as image, Image.open(mask_path) as mask:
            assert (image.format, image.mode, image.size) == ("BMP", "L", (256, 256))
            assert (mask.format, mask.mode, mask.size) == ("BMP", "L", (256, 256))
            pixels, lungs = np.asarray(image), np.asarray(mask)
        assert set(np.unique(lungs)) == {0, 255}
        # Lungs are air: darker than the tissue around them.
        ring = ndi.binary_dilation(lungs > 0, iterations=12) & (lungs == 0)
        assert pixels[lungs > 0].mean() < pixels[ring].mean() - 20


def test_nih_files_are_1024px_grey_png_named_like_nih(demo: tuple[Path, dict]) -> None:
    out, _ = demo
    images = sorted((out / "nih" / "images").glob("*"))
    assert images
    for path in images:
        assert re.fullmatch(r"\d{8}_\d{3}\.png", path.name)
        with Image.open(path) as image, Image.open(out / "nih_lung_masks" / path.name) as mask:
            assert (image.format, image.mode, image.size) == ("PNG", "L", (1024, 1024))
            assert (mask.format, mask.mode, mask.size) == ("PNG", "L", (1024, 1024))
            lungs = np.asarray(mask)
        assert set(np.unique(lungs)) == {0, 255}
        assert 0.08 < (lungs > 0).mean() < 0.5
    assert sorted(p.name for p in (out / "nih_lung_masks").iterdir()) == [p.name for p in images]


def test_data_entry_table_matches_the_real_format(demo: tuple[Path, dict]) -> None:
    out, _ = demo
    text = (out / "nih" / "Data_Entry_2017_v2020.csv").read_text()
    assert text.split("\n", 1)[0] == REAL_HEADER
    rows = list(csv.reader(text.splitlines()[1:]))
    names = sorted(p.name for p in (out / "nih" / "images").iterdir())
    assert [row[0] for row in rows] == names
    for name, labels, follow_up, patient, age, sex, view, width, height, sx, sy in rows:
        assert name == f"{int(patient):08d}_{int(follow_up):03d}.png"
        parts = labels.split("|")
        assert parts == ["No Finding"] or (set(parts) <= KNOWN_LABELS and parts == sorted(set(parts)))
        assert 1 <= int(age) <= 100 and sex in {"M", "F"} and view in {"PA", "AP"}
        assert 1500 <= int(width) <= 3500 and 1500 <= int(height) <= 3500
        assert sx == sy and 0.1 < float(sx) < 0.2


def test_split_lists_cover_every_image_once_and_keep_patients_whole(demo: tuple[Path, dict]) -> None:
    out, summary = demo
    lists = {
        name: (out / "nih" / name).read_text().splitlines()
        for name in ("train_val_list.txt", "test_list.txt")
    }
    train, test = lists["train_val_list.txt"], lists["test_list.txt"]
    assert train and test
    assert sorted(train + test) == sorted(p.name for p in (out / "nih" / "images").iterdir())
    assert {n[:8] for n in train}.isdisjoint({n[:8] for n in test})
    assert summary["nih"]["images"] == {"train_val": len(train), "test": len(test), "shifted": 0}
    assert (out / "nih" / "shifted_list.txt").read_text() == ""  # SMALL has no twins


def test_same_seed_gives_identical_bytes_whatever_the_workers(
    demo: tuple[Path, dict], tmp_path: Path
) -> None:
    out, _ = demo
    make_demo_data(tmp_path / "again", SMALL, workers=2)
    assert _digests(tmp_path / "again") == _digests(out)


def test_other_seed_gives_other_images(tmp_path: Path) -> None:
    small = {**SMALL.model_dump(), "nih_size": 128, "seg_size": 128}
    make_demo_data(tmp_path / "a", DemoSettings(**{**small, "seed": 0}), workers=1)
    make_demo_data(tmp_path / "b", DemoSettings(**{**small, "seed": 1}), workers=1)
    a, b = _digests(tmp_path / "a"), _digests(tmp_path / "b")
    shared = set(a) & set(b)
    images = [key for key in shared if key.endswith((".png", ".bmp"))]
    assert images and all(a[key] != b[key] for key in images)


def test_findings_change_only_lung_pixels(records: list[NihRecord]) -> None:
    case = dataclasses.replace(records[0].case, findings=STUDY_LABELS, marker=None)
    clear = dataclasses.replace(case, findings=())
    for size in (1024, 256):
        sick, healthy = render_case(case, size), render_case(clear, size)
        assert np.array_equal(sick.lungs, healthy.lungs)
        changed = sick.image != healthy.image
        assert not changed[~sick.lungs].any()
        assert changed[sick.lungs].mean() > 0.2
        # Findings are opacities: they brighten the lungs.
        assert sick.image[sick.lungs].mean() > healthy.image[healthy.lungs].mean() + 5


@pytest.mark.parametrize("finding", STUDY_LABELS)
def test_each_finding_draws_inside_the_lungs(records: list[NihRecord], finding: str) -> None:
    case = dataclasses.replace(records[1].case, findings=(finding,), marker=None)
    sick, healthy = render_case(case, 256), render_case(dataclasses.replace(case, findings=()), 256)
    changed = np.abs(sick.image.astype(int) - healthy.image.astype(int)) > 8
    assert changed.sum() > 20
    assert not changed[~sick.lungs].any()


def test_marker_lies_outside_the_dilated_lungs(records: list[NihRecord]) -> None:
    marked = [r for r in records if r.case.marker is not None]
    assert marked
    for record in marked:
        # The marker's square, as specified, keeps 8% of the width from every lung pixel.
        marker = record.case.marker
        gap = ndi.distance_transform_edt(~render_case(record.case, 128).lungs) / 128
        rows = slice(int(marker.y * 128), int((marker.y + marker.size) * 128) + 1)
        cols = slice(int(marker.x * 128), int((marker.x + marker.size) * 128) + 1)
        assert gap[rows, cols].min() > 0.08
    for record in marked[:4]:
        # ... and it is drawn there and nowhere else.
        with_marker = render_case(record.case, 256)
        without = render_case(dataclasses.replace(record.case, marker=None), 256)
        changed = with_marker.image != without.image
        assert changed.sum() > 0.002 * changed.size
        distance = ndi.distance_transform_edt(~with_marker.lungs)
        assert distance[changed].min() > 0.08 * 256


def test_label_mix(records: list[NihRecord]) -> None:
    count = len(records)
    normal = [r for r in records if r.labels == ("No Finding",)]
    other_only = [r for r in records if r.labels != ("No Finding",) and not set(r.labels) & set(STUDY_LABELS)]
    assert 0.3 <= len(normal) / count <= 0.4
    assert 0 < len(other_only) <= 0.1 * count
    assert all(set(r.labels) <= KNOWN_LABELS - set(STUDY_LABELS) for r in other_only)
    for finding in STUDY_LABELS:
        assert sum(finding in r.labels for r in records) >= 0.15 * count
    assert any(len(set(r.labels) & set(STUDY_LABELS)) > 1 for r in records)
    for r in records:
        assert "No Finding" not in r.labels or len(r.labels) == 1
        assert set(r.case.findings) == set(r.labels) & set(STUDY_LABELS)


def test_patients_have_follow_ups_in_one_split(records: list[NihRecord]) -> None:
    by_patient: dict[int, list[NihRecord]] = {}
    for r in records:
        by_patient.setdefault(r.patient_id, []).append(r)
    assert max(len(v) for v in by_patient.values()) > 1
    for images in by_patient.values():
        assert len({r.split for r in images}) == 1
        assert sorted(r.follow_up for r in images) == list(range(len(images)))
    test_share = sum(images[0].split == "test" for images in by_patient.values()) / len(by_patient)
    assert test_share == pytest.approx(0.3, abs=0.01)


def test_marker_rates_follow_the_shortcut_design(records: list[NihRecord]) -> None:
    def share(split: str, positive: bool) -> float:
        group = [r for r in records if r.split == split and ("Pneumonia" in r.labels) == positive]
        return sum(r.case.marker is not None for r in group) / len(group)

    assert share("train_val", True) == pytest.approx(0.85, abs=0.03)
    assert share("train_val", False) == pytest.approx(0.1, abs=0.01)
    assert share("test", True) == pytest.approx(0.85, abs=0.06)
    assert share("test", False) == pytest.approx(0.1, abs=0.02)
    assert not [r for r in records if r.split == "shifted"]  # shortcut_rate_test: None, no twins


def test_shifted_twins_redraw_each_test_image_with_a_label_blind_marker() -> None:
    settings = DemoSettings(**{**RECORDS.model_dump(), "shortcut_rate_test": 0.5})
    records = build_nih_records(np.random.default_rng(11), load_lung_shapes(), settings)
    test = {(r.patient_id, r.follow_up): r for r in records if r.split == "test"}
    twins = [r for r in records if r.split == "shifted"]
    assert len(twins) == len(test)
    for twin in twins:
        source = test[(twin.patient_id, twin.follow_up - 500)]
        assert twin.name == f"{twin.patient_id:08d}_{twin.follow_up:03d}.png" != source.name
        assert twin.labels == source.labels
        assert twin.case.seed == source.case.seed and twin.case.placement == source.case.placement
    for positive in (True, False):
        group = [r for r in twins if ("Pneumonia" in r.labels) == positive]
        assert sum(r.case.marker is not None for r in group) / len(group) == pytest.approx(0.5, abs=0.05)
    # on the test images themselves the marker still goes with the label
    marked = {
        p: sum(r.case.marker is not None for r in test.values() if ("Pneumonia" in r.labels) == p)
        for p in (True, False)
    }
    assert marked[True] / sum("Pneumonia" in r.labels for r in test.values()) > 0.75


def test_a_twin_differs_from_its_test_image_only_where_a_marker_is(tmp_path: Path) -> None:
    settings = DemoSettings(
        seed=5, n_seg_images=4, n_patients=12, nih_size=128, seg_size=64, shortcut_rate_test=0.5
    )
    make_demo_data(tmp_path / "data", settings, workers=1)
    nih = tmp_path / "data" / "nih"
    twins = (nih / "shifted_list.txt").read_text().split()
    test = set((nih / "test_list.txt").read_text().split())
    assert twins and not set(twins) & test
    table = (nih / "Data_Entry_2017_v2020.csv").read_text()
    differing = 0
    for twin in twins:
        patient, follow_up = twin[:-4].split("_")
        source = f"{patient}_{int(follow_up) - 500:03d}.png"
        assert source in test and f"\n{twin}," in table
        a = np.asarray(Image.open(nih / "images" / source), dtype=int)
        b = np.asarray(Image.open(nih / "images" / twin), dtype=int)
        lungs = np.asarray(Image.open(tmp_path / "data" / "nih_lung_masks" / twin)) > 0
        assert not (a != b)[lungs].any()  # the lungs, and every finding in them, are the same pixels
        differing += bool((a != b).any())
    assert differing  # some twins gained or lost the marker


def test_lung_shapes_are_two_real_lungs_side_by_side() -> None:
    shapes = load_lung_shapes()
    assert len(shapes) >= 32
    for shape in shapes:
        assert shape.shape[0] == 2
        left, right = (np.nonzero(channel > 0.5)[1].mean() for channel in shape)
        assert left < right


@pytest.mark.parametrize(
    ("key", "value"),
    [("shortcut_label", "Hernia"), ("shortcut_rate_train", 1.5), ("test_fraction", 1.0), ("n_patients", 0)],
)
def test_settings_reject_values_that_make_no_demo(key: str, value: object) -> None:
    # The generator trusts its settings object, so these must fail when the settings are built.
    with pytest.raises(ValidationError, match=key):
        DemoSettings(**{key: value})


@pytest.mark.parametrize("case", CHECKSUMS, ids=lambda case: f"seed{case['settings']['seed']}")
def test_output_is_byte_identical_to_the_recorded_checksums(tmp_path: Path, case: dict) -> None:
    summary = make_demo_data(tmp_path / "data", DemoSettings(**case["settings"]), workers=1)
    digests = _digests(tmp_path / "data")
    changed = sorted(
        name
        for name in digests.keys() | case["sha256"].keys()
        if digests.get(name) != case["sha256"].get(name)
    )
    assert not changed, f"files differ from the recorded generator output: {changed}"
    assert summary == case["summary"]
