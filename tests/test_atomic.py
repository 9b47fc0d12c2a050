"""cxrmask.atomic: a finished-looking output exists only when it is complete."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cxrmask.atomic import atomic_dir, atomic_path, write_csv, write_json, write_text


class JobDiedError(RuntimeError):
    """Raised inside a writing block to stand for a job that dies halfway."""


def _names(folder: Path) -> list[str]:
    """Everything in ``folder``, hidden temporaries included."""
    return sorted(path.name for path in folder.iterdir())


def test_atomic_path_renames_on_success_and_keeps_the_suffix(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "mask.png"
    with atomic_path(target) as tmp:
        # Libraries choose the format from the extension, so the temporary keeps it.
        assert tmp.suffix == ".png"
        assert tmp.parent == target.parent
        assert not target.exists()
        tmp.write_bytes(b"data")
    assert target.read_bytes() == b"data"
    assert _names(target.parent) == ["mask.png"]


def test_atomic_path_explicit_suffix(tmp_path: Path) -> None:
    with atomic_path(tmp_path / "weights", suffix=".pt") as tmp:
        assert tmp.name.endswith(".pt")
        tmp.write_bytes(b"x")
    assert _names(tmp_path) == ["weights"]


def test_atomic_path_exception_leaves_neither_target_nor_temporary(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    with pytest.raises(JobDiedError), atomic_path(target) as tmp:
        tmp.write_text("half a table")
        raise JobDiedError
    assert _names(tmp_path) == []


def test_atomic_path_cleans_up_on_keyboard_interrupt(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt), atomic_path(tmp_path / "out.txt") as tmp:
        tmp.write_text("partial")
        raise KeyboardInterrupt
    assert _names(tmp_path) == []


def test_existing_target_survives_a_failed_rewrite(tmp_path: Path) -> None:
    target = tmp_path / "result.json"
    write_text(target, "old, complete")
    with pytest.raises(JobDiedError), atomic_path(target) as tmp:
        tmp.write_text("new, incomplete")
        raise JobDiedError
    assert target.read_text() == "old, complete"
    assert _names(tmp_path) == ["result.json"]


def test_successful_rewrite_replaces_the_target(tmp_path: Path) -> None:
    target = tmp_path / "result.txt"
    write_text(target, "first")
    write_text(target, "second")
    assert target.read_text() == "second"
    assert _names(tmp_path) == ["result.txt"]


def test_atomic_dir_renames_on_success(tmp_path: Path) -> None:
    target = tmp_path / "shard_0"
    with atomic_dir(target) as tmp:
        assert tmp.is_dir() and tmp.parent == tmp_path
        assert not target.exists()
        (tmp / "a.png").write_bytes(b"a")
        (tmp / "b.png").write_bytes(b"b")
    assert _names(target) == ["a.png", "b.png"]
    assert _names(tmp_path) == ["shard_0"]


def test_atomic_dir_exception_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(JobDiedError), atomic_dir(tmp_path / "shard_0") as tmp:
        (tmp / "a.png").write_bytes(b"a")
        raise JobDiedError
    assert _names(tmp_path) == []


def test_atomic_dir_existing_target_survives_a_failed_rewrite(tmp_path: Path) -> None:
    target = tmp_path / "shard_0"
    with atomic_dir(target) as tmp:
        (tmp / "old.png").write_bytes(b"old")
    with pytest.raises(JobDiedError), atomic_dir(target) as tmp:
        (tmp / "new.png").write_bytes(b"new")
        raise JobDiedError
    assert _names(target) == ["old.png"]
    assert (target / "old.png").read_bytes() == b"old"
    assert _names(tmp_path) == ["shard_0"]


def test_atomic_dir_successful_rewrite_replaces_the_old_content(tmp_path: Path) -> None:
    target = tmp_path / "shard_0"
    with atomic_dir(target) as tmp:
        (tmp / "old.png").write_bytes(b"old")
    with atomic_dir(target) as tmp:
        (tmp / "new.png").write_bytes(b"new")
    assert _names(target) == ["new.png"]
    assert _names(tmp_path) == ["shard_0"]


def test_write_json_is_sorted_and_serialises_numpy_and_paths(tmp_path: Path) -> None:
    target = tmp_path / "metrics.json"
    write_json(target, {"b": np.float32(0.5), "a": np.int64(3), "path": Path("x/y.png")})
    text = target.read_text()
    assert text.index('"a"') < text.index('"b"') < text.index('"path"')
    assert json.loads(text) == {"a": 3, "b": 0.5, "path": "x/y.png"}


def test_write_json_layout_is_two_space_indented_with_a_final_newline(tmp_path: Path) -> None:
    """The layout is part of the contract: records are hashed and diffed as text."""
    write_json(tmp_path / "record.json", {"b": [1, 2], "a": {"c": None}})
    assert (tmp_path / "record.json").read_text() == (
        '{\n  "a": {\n    "c": null\n  },\n  "b": [\n    1,\n    2\n  ]\n}\n'
    )


def test_write_json_unserialisable_value_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="cannot serialise object to JSON"):
        write_json(tmp_path / "bad.json", {"value": object()})
    assert _names(tmp_path) == []


def test_write_csv_without_index(tmp_path: Path) -> None:
    target = tmp_path / "table.csv"
    write_csv(target, pd.DataFrame({"image": ["a.png", "b.png"], "score": [0.25, 0.75]}))
    assert target.read_text().splitlines() == ["image,score", "a.png,0.25", "b.png,0.75"]
    assert _names(tmp_path) == ["table.csv"]


# ---- on a shared cluster: permissions, scancel, killed jobs ----------------------------------------------


@pytest.fixture
def umask_027() -> Iterator[None]:
    """A group-shared project's umask: group may read, others nothing."""
    old = os.umask(0o027)
    yield
    os.umask(old)


def test_outputs_get_the_modes_the_umask_gives(tmp_path: Path, umask_027: None) -> None:
    write_text(tmp_path / "table.csv", "a,b\n")
    with atomic_dir(tmp_path / "shard_0") as tmp:
        (tmp / "mask.png").write_bytes(b"png")
    assert stat.S_IMODE((tmp_path / "table.csv").stat().st_mode) == 0o640
    assert stat.S_IMODE((tmp_path / "shard_0").stat().st_mode) == 0o750
    assert stat.S_IMODE((tmp_path / "shard_0" / "mask.png").stat().st_mode) == 0o640


# A job writing a mask folder and a table until it is stopped.
WRITER = """
import sys, time
from cxrmask.atomic import atomic_dir, atomic_path, unwind_on_sigterm
unwind_on_sigterm()  # as every job does at its start
with atomic_dir(sys.argv[1] + "/shard_0") as tmp, atomic_path(sys.argv[1] + "/shard_0.csv") as table:
    (tmp / "a.png").write_bytes(b"a")
    table.write_text("half")
    print("writing", flush=True)
    time.sleep(60)
"""


def test_sigterm_removes_the_temporaries(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    job = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(tmp_path)], stdout=subprocess.PIPE, text=True, env=env
    )
    assert job.stdout.readline() == "writing\n"
    assert len(_names(tmp_path)) == 2  # the two temporaries
    job.send_signal(signal.SIGTERM)  # what scancel and a wall-time limit send first
    assert job.wait(timeout=30) == 143
    job.stdout.close()
    assert _names(tmp_path) == []


def test_rewriting_removes_what_a_killed_writer_left(tmp_path: Path) -> None:
    # What SIGKILL leaves: a half-written folder and table for shard 0.
    (tmp_path / ".shard_0.k1ll3d_x.part").mkdir()
    (tmp_path / ".shard_0.k1ll3d_x.part" / "a.png").write_bytes(b"a")
    (tmp_path / ".shard_0.csv.k1ll3d_y.part.csv").write_text("half")
    # Another output's names that merely start alike are not touched.
    (tmp_path / ".shard_0_run.json.abcdefgh.part.json").write_text("{}")
    (tmp_path / "shard_0.part").write_text("not a temporary of this module")
    with atomic_dir(tmp_path / "shard_0") as tmp:
        (tmp / "b.png").write_bytes(b"b")
    assert ".shard_0.k1ll3d_x.part" not in _names(tmp_path)
    write_text(tmp_path / "shard_0.csv", "whole")
    assert _names(tmp_path) == [
        ".shard_0_run.json.abcdefgh.part.json",
        "shard_0",
        "shard_0.csv",
        "shard_0.part",
    ]


class _DiesWhenWritten:
    """A table cell whose text cannot be made: the writer fails after it has opened its file."""

    def __str__(self) -> str:
        raise JobDiedError("killed while writing the table")


def _dying_table(rows: int) -> pd.DataFrame:
    """A table whose last row kills the writer, after the header and the rows before it."""
    return pd.DataFrame(
        {"image": [f"{i}.png" for i in range(rows)], "note": [*["ok"] * (rows - 1), _DiesWhenWritten()]}
    )


def test_write_csv_killed_midway_leaves_no_target(tmp_path: Path) -> None:
    with pytest.raises(JobDiedError):
        write_csv(tmp_path / "qc.csv", _dying_table(100))
    assert _names(tmp_path) == []


def test_write_csv_killed_midway_keeps_the_previous_table(tmp_path: Path) -> None:
    target = tmp_path / "qc.csv"
    write_csv(target, pd.DataFrame({"image": ["a.png"], "note": ["old"]}))
    with pytest.raises(JobDiedError):
        write_csv(target, _dying_table(100))
    assert target.read_text().splitlines() == ["image,note", "a.png,old"]
    assert _names(tmp_path) == ["qc.csv"]


def test_writers_create_every_missing_folder_above_the_target(tmp_path: Path) -> None:
    table = tmp_path / "results" / "tables" / "new" / "auroc.csv"
    write_csv(table, pd.DataFrame({"a": [1]}))
    with atomic_dir(tmp_path / "masks" / "tight" / "shard_0") as folder:
        (folder / "m.png").write_bytes(b"x")
    assert table.read_text() == "a\n1\n"
    assert (tmp_path / "masks" / "tight" / "shard_0" / "m.png").read_bytes() == b"x"
