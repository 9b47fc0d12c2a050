"""Train / val / test splits keep patients whole and give every split some images."""

from __future__ import annotations

import numpy as np
import pytest

from cxrmask.errors import ConfigError
from cxrmask.segment.splits import group_split


def test_every_patient_lies_in_exactly_one_split():
    rng = np.random.default_rng(0)
    patients = [f"p{int(i)}" for i in rng.integers(0, 40, size=120)]
    split = group_split(len(patients), 0.2, 0.2, seed=3, groups=patients)
    for patient in set(patients):
        assert len({s for s, p in zip(split, patients, strict=True) if p == patient}) == 1
    counts = {name: int((split == name).sum()) for name in ("train", "val", "test")}
    assert all(count > 0 for count in counts.values()), counts
    assert 0.1 < counts["test"] / len(patients) < 0.35 and 0.1 < counts["val"] / len(patients) < 0.35


def test_without_patients_each_image_is_its_own_and_the_split_is_seeded():
    first = group_split(50, 0.2, 0.2, seed=1)
    assert sorted(set(first)) == ["test", "train", "val"]
    assert (first == "test").sum() == 10 and (first == "val").sum() == 10
    assert (group_split(50, 0.2, 0.2, seed=1) == first).all()
    assert (group_split(50, 0.2, 0.2, seed=2) != first).any()


@pytest.mark.parametrize(
    ("val", "test", "groups"), [(0.5, 0.5, None), (0.0, 0.2, None), (0.2, 0.2, ["a", "a", "b", "b"])]
)
def test_impossible_splits_are_refused_by_name(val, test, groups):
    with pytest.raises(ConfigError, match=r"val_fraction|patients"):
        group_split(4, val, test, seed=0, groups=groups)
