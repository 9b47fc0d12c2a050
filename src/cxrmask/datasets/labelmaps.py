"""How each collection's label strings become the study's findings: the one place to read or edit them.

Each map names, for every finding the collection can express, the strings
that make an image positive for it. A finding missing from a collection's map
is *unknown* there: it is left out of that set's AUROCs, never counted as a
negative. Every other string the collection's table uses is listed as known,
so a string in no list (a new release, a typo, the wrong file) stops the run
with its name instead of being silently read as a negative.
"""

from __future__ import annotations

from types import MappingProxyType

from cxrmask.vocabulary import NO_FINDING

PADCHEST_FINDINGS = MappingProxyType(
    {
        "Mass": frozenset({"mass", "pulmonary mass"}),
        "Nodule": frozenset({"nodule", "multiple nodules"}),
        "Pneumonia": frozenset({"pneumonia", "atypical pneumonia"}),
        "Edema": frozenset({"pulmonary edema"}),
        "Fibrosis": frozenset({"pulmonary fibrosis"}),
    }
)
"""PadChest's strings (``Labels``, stripped) per finding. Masses outside the lung (breast, mediastinal,
pleural, soft tissue) and pseudonodules are other findings, as they are not NIH's Mass or Nodule."""

PADCHEST_NORMAL = "normal"
"""PadChest's string for an image without findings; the image is No Finding when it is the only one."""

PADCHEST_EXCLUDE = frozenset({"exclude", "suboptimal study"})
"""Strings that mark an image as unreadable; such images are left out (and counted)."""

PADCHEST_IGNORED = frozenset({"", "unchanged"})
"""Strings that say nothing about the image itself: the empty string the table holds after a trailing
comma, and "unchanged" (against an earlier study)."""

PADCHEST_OTHER = frozenset(
    {
        "COPD signs",
        "Chilaiditi sign",
        "NSG tube",
        "abnormal foreign body",
        "abscess",
        "adenopathy",
        "air bronchogram",
        "air fluid level",
        "air trapping",
        "alveolar pattern",
        "aortic aneurysm",
        "aortic atheromatosis",
        "aortic button enlargement",
        "aortic elongation",
        "aortic endoprosthesis",
        "apical pleural thickening",
        "artificial aortic heart valve",
        "artificial heart valve",
        "artificial mitral heart valve",
        "asbestosis signs",
        "ascendent aortic elongation",
        "atelectasis",
        "atelectasis basal",
        "axial hyperostosis",
        "azygoesophageal recess shift",
        "azygos lobe",
        "blastic bone lesion",
        "bone cement",
        "bone metastasis",
        "breast mass",
        "bronchiectasis",
        "bronchovascular markings",
        "bullas",
        "calcified adenopathy",
        "calcified densities",
        "calcified fibroadenoma",
        "calcified granuloma",
        "calcified mediastinal adenopathy",
        "calcified pleural plaques",
        "calcified pleural thickening",
        "callus rib fracture",
        "cardiomegaly",
        "catheter",
        "cavitation",
        "central vascular redistribution",
        "central venous catheter",
        "central venous catheter via jugular vein",
        "central venous catheter via subclavian vein",
        "central venous catheter via umbilical vein",
        "cervical rib",
        "chest drain tube",
        "chronic changes",
        "clavicle fracture",
        "consolidation",
        "costochondral junction hypertrophy",
        "costophrenic angle blunting",
        "cyst",
        "dai",
        "descendent aortic elongation",
        "dextrocardia",
        "diaphragmatic eventration",
        "double J stent",
        "dual chamber device",
        "electrical device",
        "emphysema",
        "empyema",
        "end on vessel",
        "endoprosthesis",
        "endotracheal tube",
        "esophagic dilatation",
        "external foreign body",
        "fibrotic band",
        "fissure thickening",
        "flattened diaphragm",
        "fracture",
        "gastrostomy tube",
        "goiter",
        "granuloma",
        "ground glass pattern",
        "gynecomastia",
        "heart insufficiency",
        "heart valve calcified",
        "hemidiaphragm elevation",
        "hiatal hernia",
        "hilar congestion",
        "hilar enlargement",
        "humeral fracture",
        "humeral prosthesis",
        "hydropneumothorax",
        "hyperinflated lung",
        "hypoexpansion",
        "hypoexpansion basal",
        "increased density",
        "infiltrates",
        "interstitial pattern",
        "kerley lines",
        "kyphosis",
        "laminar atelectasis",
        "lepidic adenocarcinoma",
        "lipomatosis",
        "lobar atelectasis",
        "loculated fissural effusion",
        "loculated pleural effusion",
        "lung metastasis",
        "lung vascular paucity",
        "lymphangitis carcinomatosa",
        "lytic bone lesion",
        "major fissure thickening",
        "mammary prosthesis",
        "mastectomy",
        "mediastinal enlargement",
        "mediastinal mass",
        "mediastinal shift",
        "mediastinic lipomatosis",
        "metal",
        "miliary opacities",
        "minor fissure thickening",
        "nephrostomy tube",
        "nipple shadow",
        "non axial articular degenerative changes",
        "obesity",
        "osteopenia",
        "osteoporosis",
        "osteosynthesis material",
        "pacemaker",
        "pectum carinatum",
        "pectum excavatum",
        "pericardial effusion",
        "pleural effusion",
        "pleural mass",
        "pleural plaques",
        "pleural thickening",
        "pneumomediastinum",
        "pneumoperitoneo",
        "pneumothorax",
        "post radiotherapy changes",
        "prosthesis",
        "pseudonodule",
        "pulmonary artery enlargement",
        "pulmonary artery hypertension",
        "pulmonary hypertension",
        "pulmonary venous hypertension",
        "reservoir central venous catheter",
        "respiratory distress",
        "reticular interstitial pattern",
        "reticulonodular interstitial pattern",
        "rib fracture",
        "right sided aortic arch",
        "round atelectasis",
        "sclerotic bone lesion",
        "scoliosis",
        "segmental atelectasis",
        "single chamber device",
        "soft tissue mass",
        "sternoclavicular junction hypertrophy",
        "sternotomy",
        "subacromial space narrowing",
        "subcutaneous emphysema",
        "superior mediastinal enlargement",
        "supra aortic elongation",
        "surgery",
        "surgery breast",
        "surgery heart",
        "surgery humeral",
        "surgery lung",
        "surgery neck",
        "suture material",
        "thoracic cage deformation",
        "total atelectasis",
        "tracheal shift",
        "tracheostomy tube",
        "tuberculosis",
        "tuberculosis sequelae",
        "vascular hilar enlargement",
        "vascular redistribution",
        "ventriculoperitoneal drain tube",
        "vertebral anterior compression",
        "vertebral compression",
        "vertebral degenerative changes",
        "vertebral fracture",
        "volume loss",
    }
)
"""Every other string of ``PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv`` (findings that are not
the study's, devices, anatomy), as the release spells them."""

CHEXPERT_FINDINGS = MappingProxyType({"Pneumonia": "Pneumonia", "Edema": "Edema"})
"""CheXpert's (and MIMIC-CXR-JPG's) label columns per finding. Its Lung Lesion does not tell Mass from
Nodule, so both are unknown; it has no fibrosis label."""

CHEXPERT_NO_FINDING = NO_FINDING
"""CheXpert's column for an image without findings."""

CHEXPERT_COLUMNS = (
    "No Finding",
    "Enlarged Cardiomediastinum",
    "Cardiomegaly",
    "Lung Opacity",
    "Lung Lesion",
    "Edema",
    "Consolidation",
    "Pneumonia",
    "Atelectasis",
    "Pneumothorax",
    "Pleural Effusion",
    "Pleural Other",
    "Fracture",
    "Support Devices",
)
"""The fourteen observation columns of CheXpert's label table; each holds 1, 0, -1 (uncertain) or
blank (not mentioned, read as 0)."""

VINDR_FINDINGS = MappingProxyType({"Fibrosis": frozenset({"Pulmonary fibrosis"})})
"""VinDr-CXR's local labels (``class_name``) per finding. Its Nodule/Mass does not tell them apart, and
it has no local pneumonia or edema label, so those are unknown."""

VINDR_NO_FINDING = "No finding"
"""VinDr-CXR's class for a reader who found nothing."""

VINDR_OTHER = frozenset(
    {
        "Aortic enlargement",
        "Atelectasis",
        "Calcification",
        "Cardiomegaly",
        "Consolidation",
        "ILD",
        "Infiltration",
        "Lung Opacity",
        "Nodule/Mass",
        "Other lesion",
        "Pleural effusion",
        "Pleural thickening",
        "Pneumothorax",
    }
)
"""VinDr-CXR's other local labels."""
