"""Per-offer treatment effects (uplift) from randomised campaign logs (causalml learners)."""

from uplift.effects.estimator import UpliftEstimator
from uplift.effects.learners import LEARNERS, BoostSettings

__all__ = ["LEARNERS", "BoostSettings", "UpliftEstimator"]
