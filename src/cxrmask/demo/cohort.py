"""Who is in the demo set: patients, follow-ups, labels, splits, table fields and who carries the marker.

Everything here is sampled from one generator in a fixed order, before any
image is drawn, so the whole dataset follows from the seed. A bright marker
is correlated with one label in train, val and test alike (a shortcut a CNN
can learn from the whole image). With ``shortcut_rate_test`` set, every test
image also gets a *shifted twin*: the same patient, findings and pixels, with
the marker drawn independently of the label, so a classifier's AUROC lost
from test to twins is what it owed to the marker.
"""

from __future__ import annotations

import dataclasses
import functools
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from cxrmask.config import DemoSettings
from cxrmask.demo.anatomy import Placement
from cxrmask.demo.findings import room_for_marker, sample_marker
from cxrmask.demo.render import Case
from cxrmask.vocabulary import NO_FINDING, STUDY_LABELS

OTHER_FINDINGS = ("Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Pleural_Thickening")
"""NIH findings outside the study that some images list; they are not drawn."""
SPLITS = ("train_val", "test", "shifted")
SHIFTED_FOLLOW_UP = 500
"""A shifted twin's follow-up number is its test image's plus this (NIH names carry three digits)."""
# Detector geometries that make up most of the real table: (width, height, pixel spacing in mm).
NIH_GEOMETRIES = (
    (2500, 2048, "0.168"),
    (2992, 2991, "0.143"),
    (3056, 2544, "0.139"),
    (2500, 2048, "0.171"),
    (2048, 2500, "0.168"),
    (2021, 2021, "0.194311"),
    (2544, 3056, "0.139"),
)
NIH_GEOMETRY_WEIGHTS = (30, 22, 15, 7, 6, 4, 2)

# Share of NIH-style images by label group; the rest carry one or more of STUDY_LABELS.
NO_FINDING_SHARE = 0.35
OTHER_ONLY_SHARE = 0.05
EXTRA_FINDING_RATE = 0.15  # chance that an abnormal image also shows each further finding
OTHER_COLABEL_RATE = 0.1  # chance that an abnormal image also lists one finding outside STUDY_LABELS
SEG_MARKER_RATE = 0.3  # share of Airlangga-style images with a marker


@dataclass(frozen=True)
class NihRecord:
    """One NIH-style image: its table row and how to draw it."""

    name: str
    patient_id: int
    follow_up: int
    age: int
    sex: str
    view: str
    geometry: tuple[int, int, str]
    labels: tuple[str, ...]
    split: str
    case: Case


def _sample_placement(rng: np.random.Generator, n_shapes: int) -> Placement:
    """Draw a lung placement centred roughly as in a PA film: lungs span ~60-70% of the width."""
    return Placement(
        shape_index=int(rng.integers(0, n_shapes)),
        centre_x=0.5 + rng.normal(0.0, 0.012),
        top=rng.uniform(0.1, 0.15),
        width=rng.uniform(0.58, 0.7),
        aspect=1.0 + rng.normal(0.0, 0.04),
        angle_deg=float(np.clip(rng.normal(0.0, 1.5), -4.0, 4.0)),
    )


def _jitter_placement(base: Placement, rng: np.random.Generator) -> Placement:
    """The same patient on another day: small changes of position, size and tilt."""
    return dataclasses.replace(
        base,
        centre_x=base.centre_x + rng.normal(0.0, 0.008),
        top=base.top + rng.normal(0.0, 0.008),
        width=base.width * (1.0 + rng.normal(0.0, 0.02)),
        angle_deg=base.angle_deg + rng.normal(0.0, 1.0),
    )


def _fit_placement(placement: Placement, shape: np.ndarray) -> Placement:
    """Shrink a placement whose lungs would reach below 88% of the frame (tall lung shapes)."""
    _, crop_h, crop_w = shape.shape
    height = placement.width * placement.aspect * crop_h / crop_w
    limit = 0.88 - placement.top
    if height <= limit:
        return placement
    return dataclasses.replace(placement, width=placement.width * limit / height)


def _assign_labels(rng: np.random.Generator, count: int) -> list[tuple[str, ...]]:
    """Label ``count`` images: ~35% No Finding, ~5% other findings only, the rest one or more of STUDY_LABELS.

    Primary findings go round-robin before shuffling, so every finding is
    common enough to learn even in a small set.
    """
    n_normal = round(NO_FINDING_SHARE * count)
    n_other = round(OTHER_ONLY_SHARE * count)
    labels: list[tuple[str, ...]] = [(NO_FINDING,)] * n_normal
    labels += [(str(rng.choice(OTHER_FINDINGS)),) for _ in range(n_other)]
    for k in range(count - n_normal - n_other):
        primary = STUDY_LABELS[k % len(STUDY_LABELS)]
        chosen = {primary} | {f for f in STUDY_LABELS if f != primary and rng.random() < EXTRA_FINDING_RATE}
        if rng.random() < OTHER_COLABEL_RATE:
            chosen.add(str(rng.choice(OTHER_FINDINGS)))
        labels.append(tuple(sorted(chosen)))
    order = rng.permutation(count)
    return [labels[i] for i in order]


def _sample_chest(rng: np.random.Generator, shapes: tuple[np.ndarray, ...]) -> Placement:
    """Draw a patient's lung placement, redrawn until a marker fits in an upper corner."""
    while True:
        placement = _sample_placement(rng, len(shapes))
        placement = _fit_placement(placement, shapes[placement.shape_index])
        if room_for_marker(placement, shapes[placement.shape_index]):
            return placement


def _follow_up_placement(base: Placement, rng: np.random.Generator, shape: np.ndarray) -> Placement:
    """Jitter a patient's placement for one image; keep the patient's own if that leaves no marker room."""
    placement = _fit_placement(_jitter_placement(base, rng), shape)
    return placement if room_for_marker(placement, shape) else base


def build_nih_records(
    rng: np.random.Generator, shapes: tuple[np.ndarray, ...], settings: DemoSettings
) -> list[NihRecord]:
    """Sample patients, follow-ups, table fields, labels, split and marker for every NIH-style image."""
    n_patients = settings.n_patients
    n_test = min(max(round(settings.test_fraction * n_patients), 1), n_patients - 1)
    test_patients = {int(p) + 1 for p in rng.permutation(n_patients)[:n_test]}
    patients = []
    for patient_id in range(1, n_patients + 1):
        n_images = int(rng.integers(1, settings.max_images_per_patient + 1))
        sex = "M" if rng.random() < 0.56 else "F"
        age = int(np.clip(rng.normal(47.0, 16.0), 18, 90))
        placement = _sample_chest(rng, shapes)
        patients.append((patient_id, n_images, sex, age, placement))
    total = sum(p[1] for p in patients)
    labels = iter(_assign_labels(rng, total))

    records = []
    for patient_id, n_images, sex, age, placement in patients:
        for follow_up in range(n_images):
            image_labels = next(labels)
            geometry = NIH_GEOMETRIES[int(rng.choice(len(NIH_GEOMETRIES), p=_geometry_weights()))]
            view = "PA" if rng.random() < 0.6 else "AP"
            heart = (1.25 if "Cardiomegaly" in image_labels else 1.0) * rng.uniform(0.9, 1.1)
            case = Case(
                seed=int(rng.integers(0, 2**31 - 1)),
                placement=_follow_up_placement(placement, rng, shapes[placement.shape_index]),
                findings=tuple(label for label in image_labels if label in STUDY_LABELS),
                heart_scale=heart,
            )
            records.append(
                NihRecord(
                    name=f"{patient_id:08d}_{follow_up:03d}.png",
                    patient_id=patient_id,
                    follow_up=follow_up,
                    age=min(age + follow_up // 2, 95),
                    sex=sex,
                    view=view,
                    geometry=geometry,
                    labels=image_labels,
                    split="test" if patient_id in test_patients else "train_val",
                    case=case,
                )
            )

    marked = _choose_marked(
        rng, records, settings.shortcut_label, settings.shortcut_rate_train, settings.shortcut_rate_other
    )
    records = _with_markers(rng, records, marked, shapes)
    if settings.shortcut_rate_test is None:
        return records
    # The twins' marker has one share among images with and without the label: no information.
    rate = settings.shortcut_rate_test
    twins = [_twin(r) for r in records if r.split == "test"]
    chosen = _choose_marked(rng, twins, settings.shortcut_label, rate, rate)
    return records + _with_markers(rng, twins, chosen, shapes)


def _with_markers(
    rng: np.random.Generator, records: list[NihRecord], marked: set[int], shapes: tuple[np.ndarray, ...]
) -> list[NihRecord]:
    """``records`` with a freshly placed marker on those at the indices ``marked``."""
    out = list(records)
    for index in sorted(marked):
        case = out[index].case
        marker = sample_marker(rng, case.placement, shapes[case.placement.shape_index])
        out[index] = dataclasses.replace(out[index], case=dataclasses.replace(case, marker=marker))
    return out


def _twin(record: NihRecord) -> NihRecord:
    """A test image's shifted twin: same patient, labels and drawing, no marker yet, its own name."""
    follow_up = record.follow_up + SHIFTED_FOLLOW_UP
    return dataclasses.replace(
        record,
        name=f"{record.patient_id:08d}_{follow_up:03d}.png",
        follow_up=follow_up,
        split="shifted",
        case=dataclasses.replace(record.case, marker=None),
    )


EXTERNAL_SPLIT = "external"
"""The split of the demo's PadChest-style images: another site's, seen only as an external test set."""
EXTERNAL_STREAM = 7
"""The external collection's own random stream (with the seed), so adding it changes no NIH-style image."""
EXTERNAL_PHYSICIAN_SHARE = 0.3
"""Share of its rows labelled by physicians (PadChest's is 39,053 of 160,861); the rest by its model."""


def build_external_records(shapes: tuple[np.ndarray, ...], settings: DemoSettings) -> list[NihRecord]:
    """Sample the PadChest-style external collection: one image per patient, labelled like the NIH-style
    set, drawn with another site's look, and a marker at one rate whatever the label (the twins' rate), so a
    classifier that learned the marker loses AUROC here as on the twins, and for another reason too."""
    rng = np.random.default_rng([settings.seed, EXTERNAL_STREAM])
    labels = _assign_labels(rng, settings.n_external)
    records = []
    for index, image_labels in enumerate(labels):
        placement = _sample_chest(rng, shapes)
        digits = "".join(str(d) for d in rng.integers(0, 10, size=38))
        suffix = "".join(chr(c) for c in rng.integers(ord("a"), ord("z") + 1, size=6))
        case = Case(
            seed=int(rng.integers(0, 2**31 - 1)),
            placement=placement,
            findings=tuple(label for label in image_labels if label in STUDY_LABELS),
            heart_scale=(1.25 if "Cardiomegaly" in image_labels else 1.0) * rng.uniform(0.9, 1.1),
            look="padchest",
        )
        records.append(
            NihRecord(
                name=f"{digits}{index:02d}_{suffix}.png",
                patient_id=int(rng.integers(10**17, 10**18)),
                follow_up=0,
                age=int(np.clip(rng.normal(62.0, 16.0), 18, 95)),
                sex="M" if rng.random() < 0.5 else "F",
                view="PA" if rng.random() < 0.7 else "AP",
                geometry=(2048, 2048, "0.139"),
                labels=image_labels,
                split=EXTERNAL_SPLIT,
                case=case,
            )
        )
    rate = (
        settings.shortcut_rate_test
        if settings.shortcut_rate_test is not None
        else settings.shortcut_rate_other
    )
    return _with_markers(
        rng, records, _choose_marked(rng, records, settings.shortcut_label, rate, rate), shapes
    )


@functools.cache
def _geometry_weights() -> np.ndarray:
    """Normalised frequencies of NIH_GEOMETRIES."""
    weights = np.asarray(NIH_GEOMETRY_WEIGHTS, dtype=np.float64)
    return weights / weights.sum()


def _choose_marked(
    rng: np.random.Generator,
    records: list[NihRecord],
    shortcut_label: str,
    rate_train: float,
    rate_other: float,
) -> set[int]:
    """Return indices of images that get a marker: exact shares per split and label group.

    Exact counts (not coin flips) keep the shortcut's strength what the
    config says even in a set of a few dozen images; the test split has the
    same shares as train, so its AUROC is the in-distribution one.
    """
    groups: dict[tuple[str, bool], list[int]] = {}
    for index, record in enumerate(records):
        groups.setdefault((record.split, shortcut_label in record.labels), []).append(index)
    chosen: set[int] = set()
    for (_, positive), members in sorted(groups.items()):
        rate = rate_train if positive else rate_other
        count = round(rate * len(members))
        chosen.update(int(i) for i in rng.permutation(members)[:count])
    return chosen


def build_seg_cases(
    rng: np.random.Generator, shapes: tuple[np.ndarray, ...], n_images: int
) -> list[tuple[str, Case]]:
    """Sample the Airlangga-style set: half Normal, half Abnormal (one or two findings).

    Some images carry a marker, as real films do, but unrelated to the
    group: this set teaches lung outlines, not labels.
    """
    cases = []
    for index in range(n_images):
        group = "Normal" if index % 2 == 0 else "Abnormal"
        placement = _sample_chest(rng, shapes)
        findings: tuple[str, ...] = ()
        if group == "Abnormal":
            count = int(rng.integers(1, 3))
            findings = tuple(sorted(str(f) for f in rng.choice(STUDY_LABELS, size=count, replace=False)))
        has_marker = rng.random() < SEG_MARKER_RATE
        marker = sample_marker(rng, placement, shapes[placement.shape_index]) if has_marker else None
        cases.append(
            (
                group,
                Case(
                    seed=int(rng.integers(0, 2**31 - 1)),
                    placement=placement,
                    findings=findings,
                    marker=marker,
                ),
            )
        )
    return cases


def summarise(
    seed: int, seg_cases: list[tuple[str, Case]], records: list[NihRecord], external: list[NihRecord]
) -> dict[str, Any]:
    """Counts per label and split, marker counts and file counts, for logs and the run record."""
    labels: dict[str, Counter[str]] = {split: Counter() for split in SPLITS}
    images: Counter[str] = Counter()
    patients: dict[str, set[int]] = {split: set() for split in SPLITS}
    markers: Counter[str] = Counter()
    for r in records:
        images[r.split] += 1
        patients[r.split].add(r.patient_id)
        labels[r.split].update(r.labels)
        if r.case.marker is not None:
            markers[r.split] += 1
    groups = Counter(group for group, _ in seg_cases)
    return {
        "seed": seed,
        "airlangga": {"Normal": groups["Normal"], "Abnormal": groups["Abnormal"]},
        "nih": {
            "images": {split: images[split] for split in SPLITS},
            "patients": {split: len(ids) for split, ids in patients.items()},
            "labels": {split: dict(sorted(counter.items())) for split, counter in labels.items()},
            "markers": {split: markers[split] for split in SPLITS},
            "marker_images": sorted(r.name for r in records if r.case.marker is not None),
        },
        "padchest": {
            "images": len(external),
            "labels": dict(sorted(Counter(label for r in external for label in r.labels).items())),
            "markers": sum(r.case.marker is not None for r in external),
        },
        "files": {
            "airlangga_images": len(seg_cases),
            "airlangga_masks": len(seg_cases),
            "nih_images": len(records),
            "nih_lung_masks": len(records),
            "padchest_images": len(external),
            "padchest_lung_masks": len(external),
        },
    }
