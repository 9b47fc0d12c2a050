"""Grad-CAM saliency and the share of it inside the lungs: known answers on a hand-built model, the
geometry of crop mode, and a trained classifier that learns a cue outside the lungs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from test_classify import CELLS, LABELS, SIZE, settings, synthetic_split, table_for, train

from cxrmask.classify.backbones import build_backbone
from cxrmask.classify.train import SplitData, TrainSettings, apply_mask
from cxrmask.errors import InputError
from cxrmask.saliency import cell_saliency, inside_fraction, lungs_as_seen, summarise, target_layer

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CPU = torch.device("cpu")
PLAIN = TrainSettings(image_size=32, pretrained=False, amp=False, channels_last=False, augment=False)


class Brightness(torch.nn.Module):
    """Output 0 = mean brightness (bright pixels), output 1 = mean darkness: Grad-CAM is the pixels used."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 2, 3, padding=1, bias=False)
        kernel = torch.zeros(2, 1, 3, 3)
        kernel[0, 0, 1, 1], kernel[1, 0, 1, 1] = 1.0, -1.0
        self.conv.weight.data = kernel
        self.head = torch.nn.Linear(2, 2, bias=False)
        self.head.weight.data = torch.eye(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.conv(x)).mean(dim=(2, 3)))


def square_images(n: int = 4, size: int = 32) -> tuple[SplitData, torch.Tensor]:
    """Dark images with a bright square; the 'lungs' are the square."""
    images = torch.zeros(n, size, size, dtype=torch.uint8)
    lungs = torch.zeros(n, size, size, dtype=torch.bool)
    for i in range(n):
        top = 4 + 2 * i
        images[i, top : top + 10, 6:20] = 255
        lungs[i, top : top + 10, 6:20] = True
    return SplitData(images, None, torch.ones(n, 2)), lungs


def test_saliency_is_inside_the_lungs_exactly_where_the_model_reads_the_image() -> None:
    data, lungs = square_images()
    table = pd.DataFrame({"image": [f"{i}.png" for i in range(4)]})
    per_image, sample = cell_saliency(Brightness(), data, lungs, table, ["bright", "dark"], PLAIN, CPU, 2)
    fractions = per_image.pivot(index="image", columns="label", values="inside_fraction")
    np.testing.assert_allclose(fractions["bright"], 1.0, atol=1e-6)  # reads the square only
    np.testing.assert_allclose(fractions["dark"], 0.0, atol=1e-6)  # reads the background only
    assert per_image["present"].eq(1).all()
    np.testing.assert_allclose(per_image["lung_area"][:4], lungs.float().mean(dim=(1, 2)))
    assert sample["maps"].shape == (2, 2, 32, 32) and sample["images"].shape == (2, 32, 32)
    np.testing.assert_allclose(sample["images"], data.images[:2].numpy() / 255)
    summary = summarise(per_image).set_index("label")
    assert summary.loc["bright", "inside_fraction"] == pytest.approx(1.0)
    assert summary.loc["dark", "n_images"] == 4


def test_inside_fraction_known_values() -> None:
    maps = np.zeros((3, 2, 2))
    maps[0] = [[1, 1], [0, 2]]
    maps[1] = [[-5, 1], [0, 0]]  # negative mass is not saliency
    lungs = np.array([[[1, 0], [0, 1]]] * 3, dtype=bool)
    fractions = inside_fraction(maps, lungs)
    assert fractions[0] == pytest.approx(0.75) and fractions[1] == 0.0 and np.isnan(fractions[2])


def test_crop_mode_measures_against_the_lungs_as_the_model_saw_them() -> None:
    size = 32
    mask = torch.zeros(1, size, size)
    mask[0, 8:24, 4:20] = 1
    lungs = mask.clone().bool()
    seen = lungs_as_seen(lungs, mask, "crop")
    assert seen.float().mean() > 0.95  # the crop is the mask's box: the lungs fill the view
    cropped = apply_mask(torch.ones(1, 1, size, size), mask[:, None], "crop")[:, 0] > 0.5
    assert torch.equal(seen, cropped)
    assert torch.equal(lungs_as_seen(lungs, mask, "zero"), lungs)
    assert torch.equal(lungs_as_seen(lungs, None, "crop"), lungs)


def test_the_target_layer_is_the_last_convolutional_stage() -> None:
    resnet = build_backbone("resnet10t", pretrained=False, num_classes=2)
    assert target_layer(resnet) is resnet.layer3  # stride 16: twice layer4's resolution
    assert target_layer(resnet, max_stride=32) is resnet.layer4
    tiny = Brightness()
    assert target_layer(tiny) is tiny.conv
    with pytest.raises(InputError, match="no convolution"):
        target_layer(torch.nn.Linear(2, 2))


def test_mismatched_lungs_are_refused() -> None:
    data, lungs = square_images()
    with pytest.raises(InputError, match="3 lung masks for 4 test images"):
        cell_saliency(
            Brightness(), data, lungs[:3], pd.DataFrame({"image": list("abcd")}), ["a", "b"], PLAIN, CPU
        )


def test_a_trained_classifier_looks_outside_the_lungs_for_a_cue_that_lies_there() -> None:
    """Synthetic findings sit in a 2 x 3 grid; call the cells of four labels 'lungs' and Fibrosis' cell
    outside them. A classifier trained on the whole image reads Fibrosis outside the lungs."""
    rng = np.random.default_rng(0)
    splits = {name: synthetic_split(n, rng) for name, n in (("train", 60), ("val", 20), ("test", 40))}
    result, _ = train(splits, epochs=4)
    model = build_backbone("resnet10t", False, len(LABELS))
    model.load_state_dict(result.state)
    lungs = torch.ones(SIZE, SIZE, dtype=torch.bool)
    row, col = CELLS[LABELS.index("Fibrosis")]
    lungs[row * SIZE // 2 : (row + 1) * SIZE // 2, col * SIZE // 3 :] = False
    test = splits["test"]
    per_image, _ = cell_saliency(
        model, test, lungs.expand(len(test.targets), -1, -1), table_for(test), LABELS, settings(), CPU
    )
    present = summarise(per_image).set_index("label")["inside_fraction_present"]
    outside_share = 1 - lungs.float().mean().item()
    assert 1 - present["Fibrosis"] > 2 * outside_share, present.to_dict()  # far more than by area
    assert present["Fibrosis"] < min(present[label] for label in LABELS if label != "Fibrosis")
