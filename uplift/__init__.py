"""uplift: retention-campaign optimiser for banks.

The public API (imported lazily, so ``import uplift`` stays fast)::

    import uplift

    result = uplift.plan(300_000, customers=customers, events=events, campaign_log=log)
    result.plan, result.call_list, result.summary, result.certificate, result.curve

- :func:`plan` / :class:`PlanResult`: a whole campaign plan from DataFrames (or a data folder).
- :class:`ChurnModel`: churn risk with calibrated probabilities, reasons and tiers.
- :class:`EffectsModel` (alias :class:`UpliftModel`) and :class:`UpliftEstimator`: per-offer
  effects from a randomised campaign.
- :func:`allocate_offers` and :class:`CampaignSpec`: the budgeted allocation under a campaign's
  rules (``uplift.allocate`` is the allocator package).
- :func:`evaluate_ab`: A/B evaluation with ROI; :func:`simulate_policy`: offline policy
  simulation on logged data; :func:`simulate_bank`: a simulated bank with known truth.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "plan": ("uplift.planner", "plan"),
    "PlanResult": ("uplift.planner", "PlanResult"),
    "ChurnModel": ("uplift.churn.model", "ChurnModel"),
    "EffectsModel": ("uplift.effects.model", "EffectsModel"),
    "UpliftModel": ("uplift.effects.model", "EffectsModel"),
    "UpliftEstimator": ("uplift.effects.estimator", "UpliftEstimator"),
    "allocate_offers": ("uplift.allocate.plan", "allocate"),
    "CampaignSpec": ("uplift.campaign", "CampaignSpec"),
    "evaluate_ab": ("uplift.evaluate.ab", "evaluate_ab"),
    "simulate_policy": ("uplift.evaluate.simulation", "simulate_policies"),
    "simulate_bank": ("uplift.simulate", "simulate_bank"),
}
__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'uplift' has no attribute {name!r}")
    module, attribute = _EXPORTS[name]
    value = getattr(import_module(module), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
