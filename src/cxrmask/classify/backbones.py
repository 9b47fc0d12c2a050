"""Classifier backbones by name, from timm or torchvision.

``resnet50`` (or ``timm:resnet50``) comes from timm, ``torchvision:resnet50``
from torchvision. Inputs are single-channel: timm adapts pretrained RGB stem
weights to one channel by summing them, and a torchvision stem is adapted the
same way here, so grey radiographs are not tripled in memory.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from cxrmask.errors import ConfigError

log = logging.getLogger(__name__)

WEIGHTS_HINT = (
    "ImageNet weights for {name} could not be fetched ({exc}). Without internet, put the weights in the "
    "torch/Hugging Face cache (TORCH_HOME, HF_HOME) on a machine that has it, "
    "or set classifier.pretrained: false."
)


def _timm_model(name: str, pretrained: bool, num_classes: int) -> nn.Module:
    import timm

    if name not in timm.list_models(pretrained=False):
        raise ConfigError(f"classifier.backbones: timm has no model {name!r} (see timm.list_models()).")
    try:
        return timm.create_model(name, pretrained=pretrained, num_classes=num_classes, in_chans=1)
    except (OSError, RuntimeError, ValueError) as exc:
        if pretrained:
            raise ConfigError(WEIGHTS_HINT.format(name=name, exc=exc)) from exc
        raise


def _first_conv_to_grey(model: nn.Module) -> None:
    """Replace the first 3-channel convolution by a 1-channel one with summed weights."""
    for parent in model.modules():
        for child_name, child in parent.named_children():
            if isinstance(child, nn.Conv2d) and child.in_channels == 3:
                grey = nn.Conv2d(
                    1,
                    child.out_channels,
                    child.kernel_size,
                    child.stride,
                    child.padding,
                    child.dilation,
                    child.groups,
                    child.bias is not None,
                )
                with torch.no_grad():
                    grey.weight.copy_(child.weight.sum(dim=1, keepdim=True))
                    if child.bias is not None:
                        grey.bias.copy_(child.bias)
                setattr(parent, child_name, grey)
                return
    raise ConfigError("backbone has no 3-channel input convolution to adapt to grey images.")


def _replace_head(model: nn.Module, num_classes: int) -> None:
    """Swap the last Linear layer for a ``num_classes`` one (torchvision heads differ by family)."""
    last = None
    for parent in model.modules():
        for child_name, child in parent.named_children():
            if isinstance(child, nn.Linear):
                last = (parent, child_name, child)
    if last is None:
        raise ConfigError("backbone has no Linear classification head to replace.")
    parent, child_name, child = last
    setattr(parent, child_name, nn.Linear(child.in_features, num_classes))


def _torchvision_model(name: str, pretrained: bool, num_classes: int) -> nn.Module:
    import torchvision

    if name not in torchvision.models.list_models():
        raise ConfigError(f"classifier.backbones: torchvision has no model {name!r}.")
    try:
        model = torchvision.models.get_model(name, weights="DEFAULT" if pretrained else None)
    except (OSError, RuntimeError, ValueError) as exc:
        raise ConfigError(WEIGHTS_HINT.format(name=name, exc=exc)) from exc
    _first_conv_to_grey(model)
    _replace_head(model, num_classes)
    return model


def build_backbone(name: str, pretrained: bool, num_classes: int) -> nn.Module:
    """A classifier with ``num_classes`` logits and a 1-channel input."""
    library, _, model_name = name.rpartition(":")
    library = library or "timm"
    if library == "timm":
        return _timm_model(model_name, pretrained, num_classes)
    if library == "torchvision":
        return _torchvision_model(model_name, pretrained, num_classes)
    raise ConfigError(f"classifier.backbones: {name!r}: prefix must be timm: or torchvision:.")
