"""Files in torchxrayvision's wheel, found without importing it."""

from __future__ import annotations

import importlib.util

import pytest

from cxrmask.shipped import PACKAGE, shipped_file


def test_a_shipped_file_is_found_and_an_absent_one_is_none():
    if importlib.util.find_spec(PACKAGE) is None:
        pytest.skip("torchxrayvision is not installed (make setup installs it)")
    lungs = shipped_file("data/semantic_masks_v7labs_lungs.zip")
    assert lungs is not None and lungs.is_file() and lungs.parent.name == "data"
    assert shipped_file("data/no_such_table.csv.gz") is None
    assert shipped_file("data") is None  # a folder is not a file
