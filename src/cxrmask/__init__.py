"""cxrmask: lung masking with MedSAM for multi-label chest X-ray classification."""

__version__ = "0.1.0"
