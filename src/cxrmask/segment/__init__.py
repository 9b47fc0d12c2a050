"""Lung segmentation with promptable SAM-family models (MedSAM ViT-B, LiteMedSAM)."""
