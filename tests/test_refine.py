"""cxrmask.segment.refine: the box of a mask, and re-prompting until the box settles, known exactly.

The decoder here paints the part of a fixed pair of "lungs" inside each box
onto the decoder's grid: what a perfect segmenter does, so every box and
mask the loop must reach is known in closed form.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cxrmask.segment.refine import box_of_logits, refine

INPUT, GRID = 256, 64  # encoder input side, decoder grid side (4 input pixels a cell)
LUNGS = [(10, 50, 8, 28), (12, 52, 36, 58)]  # per image: rows and columns on the grid, end exclusive


def lungs_on_grid(cells: list[tuple[int, int, int, int]] = LUNGS) -> torch.Tensor:
    grid = torch.zeros(GRID, GRID, dtype=torch.bool)
    for r0, r1, c0, c1 in cells:
        grid[r0:r1, c0:c1] = True
    return grid


class LungPainter:
    """Decoder (embeddings (B, ...), boxes (B, 1, 4) in input pixels) -> logits (B, 1, GRID, GRID): +10 on
    the lungs inside the box, -10 elsewhere. The "embedding" of image i is its index into ``truths``."""

    def __init__(self, truths: list[torch.Tensor]):
        self.truths, self.calls = truths, []

    def __call__(self, embeddings: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        self.calls.append(embeddings.flatten().tolist())
        centres = (torch.arange(GRID) + 0.5) * INPUT / GRID
        out = []
        for index, box in zip(embeddings.flatten().long(), boxes[:, 0], strict=True):
            x0, y0, x1, y1 = box.tolist()
            inside = ((centres >= y0) & (centres <= y1))[:, None] & ((centres >= x0) & (centres <= x1))[None]
            out.append(torch.where(self.truths[index] & inside, 10.0, -10.0))
        return torch.stack(out)[:, None]


def expected_box(cells: list[tuple[int, int, int, int]], margin: float) -> np.ndarray:
    """The lungs' box in input pixels (first to last covered pixel), widened and clipped."""
    r0, c0 = min(c[0] for c in cells), min(c[2] for c in cells)
    r1, c1 = max(c[1] for c in cells), max(c[3] for c in cells)
    scale = INPUT / GRID
    box = np.array([c0 * scale, r0 * scale, c1 * scale - 1, r1 * scale - 1])
    return np.clip(box + margin * INPUT * np.array([-1, -1, 1, 1]), 0, INPUT - 1)


def test_the_box_of_a_mask_is_its_two_lungs_in_input_pixels_widened_by_the_margin():
    logits = torch.where(lungs_on_grid(), 1.0, -1.0).numpy()
    np.testing.assert_allclose(box_of_logits(logits, INPUT, 0.0), [32, 40, 231, 207])
    np.testing.assert_allclose(
        box_of_logits(logits, INPUT, 0.02), [32 - 5.12, 40 - 5.12, 231 + 5.12, 207 + 5.12]
    )
    assert box_of_logits(logits, INPUT, 0.0).dtype == np.float32


def test_a_speck_outside_the_two_lungs_does_not_stretch_the_box_and_the_box_stays_in_the_input():
    grid = lungs_on_grid()
    grid[62:63, 62:63] = True  # a third, smallest part
    logits = torch.where(grid, 1.0, -1.0).numpy()
    np.testing.assert_allclose(box_of_logits(logits, INPUT, 0.0), [32, 40, 231, 207])
    edge = torch.where(lungs_on_grid([(0, 64, 0, 30), (0, 64, 34, 64)]), 1.0, -1.0).numpy()
    np.testing.assert_allclose(box_of_logits(edge, INPUT, 0.1), [0, 0, 255, 255])


def test_an_empty_mask_gives_no_box():
    assert box_of_logits(np.full((GRID, GRID), -1.0), INPUT, 0.02) is None


def test_a_whole_image_box_settles_on_the_lungs_box_in_one_re_prompt():
    decoder = LungPainter([lungs_on_grid()])
    logits, boxes = refine(
        decoder, torch.tensor([0.0]), torch.tensor([[0.0, 0.0, 255.0, 255.0]]), INPUT, 5, 0.02
    )
    np.testing.assert_allclose(boxes[0].numpy(), expected_box(LUNGS, 0.02), atol=1e-4)
    assert torch.equal(logits[0] > 0, lungs_on_grid())
    assert len(decoder.calls) == 2  # the first decode and one re-prompt; the second box did not move


def test_a_box_inside_the_lungs_grows_by_the_margin_each_round_until_the_steps_run_out():
    """A box that cuts the lungs gives a mask no larger than itself, so each round widens it by the
    margin only: after k rounds its sides have moved k margins out (less what the lungs' edge stops)."""
    start = torch.tensor([[100.0, 100.0, 160.0, 160.0]])
    for steps in (1, 2, 3):
        decoder = LungPainter([lungs_on_grid([(0, 64, 0, 64)])])  # lung everywhere: only the box limits it
        _, boxes = refine(decoder, torch.tensor([0.0]), start, INPUT, steps, 0.05)
        # Each round: the mask's first covered pixel is the first cell whose centre lies in the box.
        box = start[0].numpy().astype(np.float64)
        for _ in range(steps):
            cells = np.array([np.ceil(box[0] / 4 - 0.5), np.ceil(box[1] / 4 - 0.5)])
            ends = np.array([np.floor(box[2] / 4 - 0.5), np.floor(box[3] / 4 - 0.5)])
            box = np.array([cells[0] * 4, cells[1] * 4, ends[0] * 4 + 3, ends[1] * 4 + 3])
            box = np.clip(box + 0.05 * INPUT * np.array([-1, -1, 1, 1]), 0, INPUT - 1)
        np.testing.assert_allclose(boxes[0].numpy(), box, atol=1e-4)
        assert len(decoder.calls) == steps + 1


def test_each_image_stops_on_its_own_and_only_moving_images_are_decoded_again():
    settled = expected_box(LUNGS, 0.02).astype(np.float32)
    decoder = LungPainter([lungs_on_grid(), lungs_on_grid()])
    start = torch.tensor([settled.tolist(), [0.0, 0.0, 255.0, 255.0]])
    logits, boxes = refine(decoder, torch.tensor([0.0, 1.0]), start, INPUT, 5, 0.02)
    assert decoder.calls == [[0.0, 1.0], [1.0]]  # image 0 was already settled
    np.testing.assert_allclose(boxes.numpy(), [settled, settled], atol=1e-4)
    assert torch.equal(logits > 0, torch.stack([lungs_on_grid(), lungs_on_grid()]))


@pytest.mark.parametrize(("tolerance", "calls"), [(1.0, 2), (6.0, 1)])
def test_a_move_within_the_tolerance_ends_the_refinement(tolerance, calls):
    """The lungs' box lies 5.12 px inside the start on every side: a tolerance of 6 px keeps the start."""
    start = torch.from_numpy(expected_box(LUNGS, 0.04).astype(np.float32))[None]
    decoder = LungPainter([lungs_on_grid()])
    _, boxes = refine(decoder, torch.tensor([0.0]), start, INPUT, 5, 0.02, tolerance=tolerance)
    assert len(decoder.calls) == calls
    target = start[0].numpy() if calls == 1 else expected_box(LUNGS, 0.02)
    np.testing.assert_allclose(boxes[0].numpy(), target, atol=1e-4)


def test_an_image_whose_box_finds_no_lung_keeps_its_box():
    decoder = LungPainter([lungs_on_grid()])
    start = torch.tensor([[240.0, 0.0, 255.0, 20.0]])  # a corner with no lung in it
    logits, boxes = refine(decoder, torch.tensor([0.0]), start, INPUT, 5, 0.02)
    assert torch.equal(boxes, start) and not (logits > 0).any() and len(decoder.calls) == 1


@pytest.mark.parametrize(("moved", "calls"), [(1.0, 1), (1.5, 2)])
def test_the_default_tolerance_is_one_input_pixel_inclusive(moved, calls):
    """A start one pixel off the settled box on one side is kept; one and a half pixels off is re-prompted."""
    settled = expected_box(LUNGS, 0.02).astype(np.float32)
    start = torch.from_numpy(settled)[None].clone()
    start[0, 2] += moved
    decoder = LungPainter([lungs_on_grid()])
    _, boxes = refine(decoder, torch.tensor([0.0]), start, INPUT, 5, 0.02)
    assert len(decoder.calls) == calls
    np.testing.assert_allclose(boxes[0].numpy(), start[0].numpy() if calls == 1 else settled, atol=1e-4)
