"""Per-offer treatment effects (uplift) from randomised campaign logs (causalml learners)."""

from uplift.effects.estimator import UpliftEstimator
from uplift.effects.learners import BoostSettings, registry

__all__ = ["BoostSettings", "UpliftEstimator", "registry"]
