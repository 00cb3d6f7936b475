"""Churn risk 30 days ahead: calibrated LightGBM, plain-language reasons, tiers."""

from uplift.churn.model import ChurnModel

__all__ = ["ChurnModel"]
