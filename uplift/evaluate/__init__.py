"""After and before a campaign: A/B evaluation with ROI, and offline policy simulation."""

from uplift.evaluate.ab import evaluate_ab
from uplift.evaluate.ope import evaluate_policy, paired_difference

__all__ = ["evaluate_ab", "evaluate_policy", "paired_difference"]
