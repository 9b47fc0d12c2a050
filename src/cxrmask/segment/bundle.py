"""MODEL.pt: one file with everything prediction needs, for the workflow and the command line alike.

Architecture spec, weights, the learned prior box, the lung-map head, the
prompt's options and the QC reference ranges travel together, so a mask
made anywhere from the file is made with the prompt it was measured with.
The weights sit under the same ``model``/``meta`` keys as any segmenter
checkpoint, so ``load_segmenter`` reads the file too.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from cxrmask.atomic import atomic_path
from cxrmask.errors import InputError
from cxrmask.segment.autoprompt import AutoPrompt
from cxrmask.segment.boxhead import LungMapHead
from cxrmask.segment.models import PromptableSegmenter, build_segmenter
from cxrmask.segment.prompts import BoxPrior
from cxrmask.segment.qc import QCReference

FORMAT = "cxrmask-segmenter/5"


@dataclasses.dataclass
class SegmenterBundle:
    """A fine-tuned segmenter with its no-ground-truth prompt and its QC reference."""

    model: PromptableSegmenter
    prompt: AutoPrompt
    qc: QCReference
    summary: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the bundle atomically (plain tensors and values: loadable with ``weights_only``)."""
        head = self.prompt.head
        meta = {
            "format": FORMAT,
            "arch": dict(self.model.arch),
            "prior": dataclasses.asdict(self.prompt.prior),
            "prompt": {
                "start": self.prompt.start,
                "steps": self.prompt.steps,
                "margin": self.prompt.margin,
                "fuse": self.prompt.fuse,
            },
            "box_head": dict(head.config) if head is not None else None,
            "qc": self.qc.to_dict(),
            "summary": dict(self.summary),
        }
        payload = {"model": self.model.state_dict(), "meta": meta}
        if head is not None:
            payload["box_head"] = head.state_dict()
        with atomic_path(path) as tmp:
            torch.save(payload, tmp)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> SegmenterBundle:
        """Read a bundle written by :meth:`save`; any other file is refused with what to do."""
        path = Path(path)
        if not path.is_file():
            raise InputError(f"{path}: model file not found. Make one with `cxrmask seg-finetune`.")
        payload = torch.load(path, map_location="cpu", weights_only=True)
        meta = payload.get("meta", {}) if isinstance(payload, dict) else {}
        found = meta.get("format")
        if isinstance(found, str) and found.startswith("cxrmask-segmenter/") and found != FORMAT:
            raise InputError(
                f"{path}: a segmenter bundle of another cxrmask version (format {found!r}; this one reads "
                f"{FORMAT!r}). Make it again with `cxrmask seg-finetune`, or rerun the rule finetune_medsam."
            )
        if found != FORMAT:
            raise InputError(
                f"{path}: not a cxrmask segmenter bundle (no {FORMAT!r} format tag). "
                "Make one with `cxrmask seg-finetune`."
            )
        model = build_segmenter(meta["arch"])
        model.load_state_dict(payload["model"])
        model.eval()
        head = None
        if meta["box_head"] is not None:
            head = LungMapHead(**meta["box_head"])
            head.load_state_dict(payload["box_head"])
            head.eval()
        prior = meta["prior"]
        box_prior = BoxPrior(
            whole=tuple(prior["whole"]),
            lungs=tuple(tuple(box) for box in prior["lungs"]),
            margin=prior["margin"],
            n_masks=prior["n_masks"],
        )
        prompt = AutoPrompt(prior=box_prior, head=head, **meta["prompt"])
        return cls(model, prompt, QCReference.from_dict(meta["qc"]), meta.get("summary", {}))
