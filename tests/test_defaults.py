"""The defaults the README promises are the ones the full run and the library use.

The numbers are read from the README's own sentences, so a change to a
default that the README does not follow (or the reverse) fails here.
"""

from __future__ import annotations

import re

import pytest
import yaml
from snakerun import REPO

from cxrmask.config import FinetuneSettings, InferenceSettings
from cxrmask.segment.autoprompt import AutoPrompt

README = (REPO / "README.md").read_text()
FULL_RUN = yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def stated(pattern: str) -> float:
    """The number the README states where ``pattern`` (with one group) matches, line breaks allowed."""
    match = re.search(pattern, README)
    assert match, f"README no longer states {pattern!r}"
    return float(match.group(1))


def test_finetuning_uses_the_stated_adamw_settings():
    lr = stated(r"AdamW \(lr ([0-9.e-]+),")
    weight_decay = stated(r"AdamW \(lr [0-9.e-]+,\s+weight decay ([0-9.e-]+)\)")
    assert (lr, weight_decay) == (1e-4, 0.01)
    assert FULL_RUN["finetune"]["lr"] == pytest.approx(lr)
    assert FULL_RUN["finetune"]["weight_decay"] == pytest.approx(weight_decay)
    library = FinetuneSettings()
    assert (library.lr, library.weight_decay) == pytest.approx((lr, weight_decay))


def test_box_sides_are_jittered_by_the_stated_pixels():
    jitter = stated(r"jittered outward by 0\u2013(\d+) px")
    assert jitter == 20
    assert FULL_RUN["finetune"]["box_jitter"] == jitter == FinetuneSettings().box_jitter


def test_the_stated_share_of_empty_masks_fails_the_job():
    limit = stated(r"more than (\d+)% such masks fail the job") / 100
    assert limit == 0.01
    assert FULL_RUN["segment"]["max_empty_fraction"] == limit == InferenceSettings().max_empty_fraction


def test_the_head_is_fused_into_the_masks_at_the_stated_weight():
    weight = stated(r"`finetune\.head_fusion`, default (\d+(?:\.\d+)?)\)")
    assert weight == 1
    assert FULL_RUN["finetune"]["head_fusion"] == weight == FinetuneSettings().head_fusion
    assert AutoPrompt.__dataclass_fields__["fuse"].default == weight  # the bundle's own default
