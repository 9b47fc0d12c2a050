"""Google's NIH expert labels, read from the real table torchxrayvision ships, as a second reading."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError
from sklearn.metrics import roc_auc_score

from cxrmask.config import NihSettings
from cxrmask.errors import InputError
from cxrmask.expert import EITHER, EXPERT_COLUMNS, expert_aurocs, read_expert_labels

torchxrayvision = pytest.importorskip("torchxrayvision")
TABLE = Path(torchxrayvision.__file__).parent / "data" / "google2019_nih-chest-xray-labels.csv.gz"
LABELS = ["Mass", "Nodule", "Pneumonia"]


@pytest.fixture(scope="module")
def expert() -> pd.DataFrame:
    return read_expert_labels(str(TABLE))


def test_the_real_table_reads_as_one_reading_per_image(expert) -> None:
    raw = pd.read_csv(TABLE)
    assert len(expert) == raw["Image Index"].nunique() == 4376
    assert set(expert["expert"]) == {0, 1}
    merged = expert.merge(raw[["Image Index", "Nodule or mass"]], left_on="image", right_on="Image Index")
    assert ((merged["Nodule or mass"] == "YES") == (merged["expert"] == 1)).all()


def _cells(expert: pd.DataFrame, rng: np.random.Generator, extra: int) -> list[tuple[dict, pd.DataFrame]]:
    """Predictions on 300 images the experts read and ``extra`` they did not (NIH-style names): Mass
    scores follow the experts' reading, NIH's labels agree with it most of the time."""
    covered = expert.sample(300, random_state=0)
    names = [*covered["image"], *[f"9999{i:04d}_000.png" for i in range(extra)]]
    truth = np.concatenate([covered["expert"].to_numpy(), rng.integers(0, 2, extra)])
    frame = pd.DataFrame({"image": names, "patient_id": range(len(names))})
    for label in LABELS:
        nlp = np.where(rng.random(len(names)) < 0.85, truth, 1 - truth)
        frame[f"true_{label}"] = nlp
        frame[f"score_{label}"] = truth + rng.normal(0, 1.0, len(names))
    return [({"backbone": "net", "mask": "tight", "seed": 0}, frame)]


def test_each_output_is_scored_against_both_readings_on_the_covered_images_only(expert) -> None:
    loaded = _cells(expert, np.random.default_rng(0), extra=50)
    flat = expert_aurocs(loaded, expert, LABELS, 0.05)
    assert list(flat.columns) == list(EXPERT_COLUMNS)
    table = flat.set_index(["output", "reading"])
    frame = loaded[0][1].merge(expert, on="image")
    assert len(frame) == 300  # the 50 images the experts did not read are out
    for output in ("Mass", "Nodule"):
        assert table.loc[(output, "expert"), "auroc"] == pytest.approx(
            roc_auc_score(frame["expert"], frame[f"score_{output}"]), abs=1e-12
        )
        assert table.loc[(output, "nlp"), "auroc"] == pytest.approx(
            roc_auc_score(frame[f"true_{output}"], frame[f"score_{output}"]), abs=1e-12
        )
        row = table.loc[(output, "expert")]
        assert row["n_pos"] + row["n_neg"] == 300 and row["ci_low"] < row["auroc"] < row["ci_high"]
    either = frame[["score_Mass", "score_Nodule"]].max(axis=1)
    assert table.loc[(EITHER, "expert"), "auroc"] == pytest.approx(roc_auc_score(frame["expert"], either))
    nlp_either = frame[["true_Mass", "true_Nodule"]].max(axis=1)
    assert table.loc[(EITHER, "nlp"), "n_pos"] == nlp_either.sum()
    # the scores follow the experts, so their reading scores higher than NIH's noisier labels
    assert table.loc[("Mass", "expert"), "auroc"] > table.loc[("Mass", "nlp"), "auroc"]


def test_a_table_that_covers_no_test_image_turns_the_reading_off(expert, caplog) -> None:
    frame = pd.DataFrame({"image": ["99990000_000.png", "99990001_000.png"], "patient_id": [1, 2]})
    for label in LABELS:
        frame[f"true_{label}"], frame[f"score_{label}"] = [0, 1], [0.2, 0.8]
    table = expert_aurocs([({"backbone": "net", "mask": "tight", "seed": 0}, frame)], expert, LABELS, 0.05)
    assert table.empty and list(table.columns) == list(EXPERT_COLUMNS)
    assert "covers none of the test images" in caplog.text


def test_a_table_that_is_not_the_experts_is_refused(tmp_path) -> None:
    other = tmp_path / "other.csv"
    other.write_text("Image Index,Airspace opacity\n00000013_008.png,YES\n")
    with pytest.raises(InputError, match="no column \\['Nodule or mass'\\]"):
        read_expert_labels(str(other))
    odd = tmp_path / "odd.csv"
    odd.write_text("Image Index,Nodule or mass\n00000013_008.png,MAYBE\n")
    with pytest.raises(InputError, match=r"00000013_008\.png.*YES or NO"):
        read_expert_labels(str(odd))
    twice = tmp_path / "twice.csv"
    twice.write_text("Image Index,Nodule or mass\n00000013_008.png,YES\n00000013_008.png,NO\n")
    with pytest.raises(InputError, match="both YES and NO"):
        read_expert_labels(str(twice))


def test_the_key_needs_mass_or_nodule_among_the_labels() -> None:
    with pytest.raises(ValidationError, match="neither Mass nor Nodule"):
        NihSettings(expert_labels=str(TABLE), labels=["Pneumonia", "Edema"])
    assert NihSettings(expert_labels=str(TABLE), labels=["Nodule"]).expert_labels == str(TABLE)
