"""Files that torchxrayvision's wheel ships (real label tables, real lung masks), found without importing it.

Importing torchxrayvision imports torch (about 10 s), and only its data files are wanted, so the package
is located with ``importlib.util.find_spec``, which imports nothing.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

PACKAGE = "torchxrayvision"


def shipped_file(relative: str) -> Path | None:
    """``relative`` (e.g. ``data/chexpert_train.csv.gz``) inside the installed wheel; None where the
    package or the file is absent."""
    spec = importlib.util.find_spec(PACKAGE)
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in folders:
        path = Path(folder, relative)
        if path.is_file():
            return path
    return None
