"""Where each classifier looks: Grad-CAM on the test images and the share of it inside the lungs.

The paper argues that masking keeps a classifier's attention on the lungs;
it does not measure where unmasked classifiers look. This module measures
it: for every test image and label, a Grad-CAM map (pytorch-grad-cam, on the
backbone's last convolutional stage) of that label's output, and the fraction
of the map's positive mass that falls inside the lungs. An original-image
classifier that reads a marker outside the lungs shows a low fraction for the
label the marker predicts.

The maps are the library's: ReLU of the gradient-weighted activations,
min-max scaled per image and upsampled to the input. The lungs are those of
the image as the model saw it: in crop mode the lung mask is cropped with the
same box as the image.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

from cxrmask.classify.train import SplitData, TrainSettings, crop_to_mask_box, model_inputs
from cxrmask.errors import InputError

log = logging.getLogger(__name__)


def target_layer(model: torch.nn.Module, max_stride: int = 16) -> torch.nn.Module:
    """The deepest stage at most ``max_stride`` times smaller than the input; else the last Conv2d.

    Grad-CAM usually explains the last stage, but at stride 32 a 128-pixel
    image gives a 4 x 4 map whose cells are a quarter of a lung wide: too coarse
    to tell inside from outside. Stride 16 keeps the deep semantics at twice
    the resolution (14 x 14 at 224 pixels). timm's ``feature_info`` gives each
    stage's stride; other models fall back to their last convolution.
    """
    info = getattr(model, "feature_info", None)
    if info:
        stages = [stage for stage in info if stage["reduction"] <= max_stride] or list(info)[:1]
        return model.get_submodule(stages[-1]["module"])
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    if not convs:
        raise InputError(f"{type(model).__name__} has no convolution for Grad-CAM to explain.")
    return convs[-1]


def lungs_as_seen(lungs: torch.Tensor, masks: torch.Tensor | None, mode: str) -> torch.Tensor:
    """Lung masks (N,S,S) in the geometry of the model's input: cropped like the image in crop mode."""
    if masks is None or mode != "crop":
        return lungs.bool()
    cropped = crop_to_mask_box(lungs[:, None].float(), masks[:, None].float())
    return cropped[:, 0] > 0.5


def inside_fraction(maps: np.ndarray, lungs: np.ndarray) -> np.ndarray:
    """Share of each map's positive mass inside its lung mask (N,); NaN for a map with no positive mass."""
    positive = np.clip(maps, 0, None).reshape(len(maps), -1)
    total = positive.sum(axis=1)
    inside = (positive * lungs.reshape(len(lungs), -1)).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, inside / np.where(total > 0, total, 1), np.nan)


def gradcam_maps(
    model: torch.nn.Module,
    data: SplitData,
    label_index: int,
    settings: TrainSettings,
    device: torch.device,
    batch_size: int = 16,
) -> np.ndarray:
    """Grad-CAM maps (N,S,S) of output ``label_index`` for every image of ``data``, as the model saw it."""
    model.eval()
    maps = []
    with GradCAM(model=model, target_layers=[target_layer(model)]) as cam:
        for start in range(0, len(data.targets), batch_size):
            index = torch.arange(start, min(start + batch_size, len(data.targets)))
            inputs = model_inputs(data, index, settings, device)
            maps.append(cam(input_tensor=inputs, targets=[ClassifierOutputTarget(label_index)] * len(index)))
    return np.concatenate(maps)


def cell_saliency(
    model: torch.nn.Module,
    data: SplitData,
    lungs: torch.Tensor,
    table: pd.DataFrame,
    labels: Sequence[str],
    settings: TrainSettings,
    device: torch.device,
    examples: int = 0,
) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Per image and label: the fraction of Grad-CAM mass inside the lungs and whether the label is present.

    Also returns up to ``examples`` images (as the model saw them, in [0, 1]),
    their lungs and every label's maps, for overlay figures.
    """
    if len(lungs) != len(data.targets):
        raise InputError(
            f"{len(lungs)} lung masks for {len(data.targets)} test images: rebuild the lung mask cache."
        )
    seen = lungs_as_seen(lungs, data.masks, settings.mask_mode).cpu().numpy()
    rows, all_maps = [], []
    for k, label in enumerate(labels):
        maps = gradcam_maps(model, data, k, settings, device)
        all_maps.append(maps[:examples])
        fraction = inside_fraction(maps, seen)
        rows.append(
            pd.DataFrame(
                {
                    "image": table["image"].to_numpy(),
                    "label": label,
                    "present": data.targets[:, k].numpy().astype(int),
                    "inside_fraction": fraction,
                    "lung_area": seen.reshape(len(seen), -1).mean(axis=1),
                }
            )
        )
    shown = torch.arange(min(examples, len(data.targets)))
    images = model_inputs(data, shown, settings, device)[:, 0].float().cpu().numpy()
    sample = {
        "images": (images * 0.25 + 0.5).clip(0, 1),  # model_inputs normalises with mean 0.5, sd 0.25
        "lungs": seen[: len(shown)],
        "maps": np.stack(all_maps, axis=1) if all_maps else np.empty((0, 0)),
        "labels": np.asarray(labels, dtype=str),
        "names": table["image"].to_numpy(dtype=str)[: len(shown)],
    }
    return pd.concat(rows, ignore_index=True), sample


def summarise(per_image: pd.DataFrame) -> pd.DataFrame:
    """Mean inside-lung fraction per label (all test images, and those where the label is present).

    ``n_undefined`` counts maps with no positive mass (Grad-CAM found no
    evidence for the label anywhere); they are left out of the means.
    """
    grouped = per_image.groupby("label", sort=False)
    present = per_image[per_image["present"] == 1].groupby("label", sort=False)["inside_fraction"]
    out = grouped.agg(
        inside_fraction=("inside_fraction", "mean"),
        sd=("inside_fraction", "std"),
        n_images=("inside_fraction", "count"),
        n_undefined=("inside_fraction", lambda v: int(v.isna().sum())),
        lung_area=("lung_area", "mean"),
    )
    out["inside_fraction_present"] = present.mean()
    return out.reset_index()
