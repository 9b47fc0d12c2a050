"""cxrmask.resume: one checkpoint format, identity and mismatch policy for both training loops."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from cxrmask.resume import (
    EarlyStopping,
    Progress,
    identity,
    load_progress,
    resume_path,
    save_progress,
)
from cxrmask.torchutil import cpu_has_bf16


def test_the_checkpoint_sits_beside_the_main_output_named_after_it(tmp_path):
    assert resume_path(tmp_path / "finetuned.pt") == tmp_path / "finetuned.resume.pt"
    assert resume_path("cell/model.pth") == Path("cell/model.resume.pt")


def test_identity_records_the_fields_the_format_and_the_cpus_bf16_ability():
    run = json.loads(identity(seed=3, settings={"lr": 0.1}))
    assert run == {"format": 2, "cpu_bf16": cpu_has_bf16(), "seed": 3, "settings": {"lr": 0.1}}
    assert identity(a=1, b=2) == identity(b=2, a=1)  # canonical: the order of the fields does not matter


def parts_and_generators(seed: int):
    torch.manual_seed(seed)
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    model(torch.ones(1, 3)).sum().backward()
    optimizer.step()
    generators = {"torch": torch.Generator().manual_seed(seed), "numpy": np.random.default_rng(seed)}
    return {"model": model, "optimizer": optimizer}, generators


def test_a_checkpoint_restores_weights_optimiser_every_generator_and_progress(tmp_path, caplog):
    parts, generators = parts_and_generators(0)
    generators["torch"].manual_seed(11)
    generators["numpy"].random(5)
    stopping = EarlyStopping(patience=3)
    stopping.offer(0.7, {"epoch": 1}, parts["model"])
    stopping.offer(0.6, {"epoch": 2}, parts["model"])
    progress = Progress(stopping, [{"epoch": 1}, {"epoch": 2}], stopped=False, elapsed=4.5)
    path = tmp_path / "model.resume.pt"
    save_progress(path, identity(seed=0), parts, generators, progress)
    expected = {
        "torch": torch.rand(3, generator=generators["torch"]),
        "numpy": generators["numpy"].random(3),
        "global_torch": torch.rand(3),
        "global_numpy": np.random.rand(3),
        "python": random.random(),
    }

    other_parts, other_generators = parts_and_generators(1)
    with caplog.at_level("INFO", logger="cxrmask.resume"):
        restored = load_progress(path, identity(seed=0), other_parts, other_generators)
    assert f"resuming from {path} after epoch 2" in caplog.messages
    assert restored is not None and restored.history == progress.history and restored.elapsed == 4.5
    assert restored.stopping.score == 0.7 and restored.stopping.since_best == 1
    assert restored.stopping.row == {"epoch": 1}
    for name, tensor in parts["model"].state_dict().items():
        assert torch.equal(other_parts["model"].state_dict()[name], tensor)
    assert other_parts["optimizer"].state_dict()["state"][0]["step"] == 1
    assert torch.equal(torch.rand(3, generator=other_generators["torch"]), expected["torch"])
    assert np.array_equal(other_generators["numpy"].random(3), expected["numpy"])
    assert torch.equal(torch.rand(3), expected["global_torch"])
    assert np.array_equal(np.random.rand(3), expected["global_numpy"])
    assert random.random() == expected["python"]


class Payload:
    """An object a pickle would rebuild by running code: what a checkpoint must never be allowed to hold."""


@pytest.mark.parametrize("content", ["another run", "truncated", "code"])
def test_a_stale_or_unreadable_checkpoint_is_set_aside_with_a_warning(tmp_path, caplog, content):
    """A checkpoint of another run, a damaged one, and one holding a pickled object (read with
    weights_only, so never unpickled, even under this run's own identity) all start training afresh."""
    parts, generators = parts_and_generators(0)
    path = tmp_path / "model.resume.pt"
    if content == "truncated":
        path.write_bytes(b"not a checkpoint")
    elif content == "code":
        torch.save({"identity": identity(seed=0), "payload": Payload()}, path)
    else:
        save_progress(path, identity(seed=1), parts, generators, Progress(EarlyStopping(0), [{"epoch": 1}]))
    before = {name: tensor.clone() for name, tensor in parts["model"].state_dict().items()}
    with caplog.at_level("WARNING"):
        assert load_progress(path, identity(seed=0), parts, generators) is None
    if content == "another run":
        assert (
            f"checkpoint {path} belongs to another configuration or data: training from epoch 1"
            in caplog.text
        )
    else:
        assert f"checkpoint {path} is unreadable (" in caplog.text and "(None)" not in caplog.text
        assert "): training from epoch 1" in caplog.text
    assert all(torch.equal(parts["model"].state_dict()[k], v) for k, v in before.items())


def test_no_checkpoint_is_no_progress(tmp_path):
    parts, generators = parts_and_generators(0)
    assert load_progress(None, identity(), parts, generators) is None
    assert load_progress(tmp_path / "absent.pt", identity(), parts, generators) is None


def test_early_stopping_keeps_the_best_weights_counts_ties_as_no_gain_and_stops_at_patience():
    model = torch.nn.Linear(2, 1)
    stopping = EarlyStopping(patience=2)
    assert not stopping.offer(0.5, {"epoch": 1}, model)
    best = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        model.weight.add_(1.0)
    assert not stopping.offer(0.5, {"epoch": 2}, model)  # a tie is not a gain
    assert stopping.offer(0.4, {"epoch": 3}, model)
    assert stopping.row == {"epoch": 1}
    assert all(torch.equal(stopping.best_state()[k], v) for k, v in best.items())
    assert not EarlyStopping(patience=0).offer(0.1, {}, model)
    with pytest.raises(RuntimeError, match=r"^no epoch was offered$"):
        EarlyStopping(1).best_state()


def test_early_stopping_restored_from_its_state_keeps_counting_to_the_same_patience():
    """A resumed loop stops where the uninterrupted one would: the patience and the epochs already
    without a gain come back with the best row and weights."""
    model = torch.nn.Linear(2, 1)
    stopping = EarlyStopping(patience=2)
    stopping.offer(0.5, {"epoch": 1}, model)
    stopping.offer(0.4, {"epoch": 2}, model)
    restored = EarlyStopping.from_state(stopping.as_state())
    assert (restored.patience, restored.since_best, restored.row) == (2, 1, {"epoch": 1})
    assert all(torch.equal(restored.best_state()[k], v) for k, v in stopping.best_state().items())
    assert restored.offer(0.45, {"epoch": 3}, model)  # the second epoch without a gain


def test_a_fresh_early_stopping_has_no_best_and_counts_from_zero():
    """What a loop checkpoints before its first epoch ends: no score, row or weights, no epoch without
    gain."""
    assert EarlyStopping(patience=2).as_state() == {
        "patience": 2,
        "score": float("-inf"),
        "row": None,
        "state": None,
        "since_best": 0,
    }


def test_stopping_says_how_many_epochs_passed_without_a_gain(caplog):
    model = torch.nn.Linear(2, 1)
    stopping = EarlyStopping(patience=2)
    stopping.offer(0.5, {"epoch": 1}, model)
    stopping.offer(0.4, {"epoch": 2}, model)
    with caplog.at_level("INFO", logger="cxrmask.resume"):
        assert stopping.offer(0.3, {"epoch": 3}, model)
    assert caplog.messages == ["no validation gain for 2 epochs: stopping"]
