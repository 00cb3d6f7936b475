"""How much of a plan's predicted gain came true last time: a backtest on the campaign log.

The allocator picks the customers with the highest estimated gains, so the estimates of those
it picks run high on average (selection on noisy estimates; on the simulated bank the true
net gain of a plan was 0.79 of its prediction at 500,000 EUR and 0.58 at 10,000 EUR). The
per-customer interval of the prediction does not see this.

The backtest replays the plan's rule on the randomised campaign the effects were learned from:

1. each logged customer's effects are *out of fold* (from the cross-fitting models that never
   saw that customer), so a customer's own outcome does not inflate their estimate;
2. offers whose out-of-fold predictions fail the held-out calibration test
   (:mod:`uplift.effects.calibration`) use effect-group averages, as the plan does;
   gains and costs come from the same campaign spec; the same allocator chooses offers under
   the same rules, with the budget and the customer counts of capacities and segment quotas
   scaled by (logged customers / planned customers); do-not-contact lists and contact
   histories are not applied (they concern the new campaign);
3. for each offer, the customers the replayed plan chose for it are compared by arm as the
   campaign randomised them (self-normalised inverse-propensity weighting): mean realised
   value of those who got the offer minus that of those in control, where the realised value
   of a customer is ``-churned * customer value + value_after`` (currency). When the table
   carries the churn model's risk at assignment (``baseline_churn_risk``, from a model whose
   labels end before the campaign), each realised value is first reduced by the baseline
   ``-risk * customer value``; the baseline does not depend on the arm, so the difference keeps
   its expectation while its variance falls (regression adjustment, as CUPED; on the demo bank
   the interval narrows by about a quarter);
4. realised net gain = sum over offers of (chosen customers x that difference) - their costs;
   realisation = realised / predicted net gain, with a 95% interval (delta method, the
   prediction taken as fixed).

A planner reads the realisation as "a plan made this way delivered this share of what it
promised on the last campaign"; the plan's expected gain times the realisation is a forecast
corrected for the selection effect.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from uplift.campaign import CampaignSpec
from uplift.config import CustomerValue
from uplift.effects.calibration import EFFECT_GROUP
from uplift.valuation import Z_TWO_SIDED_95, realised_value

OOF_CHURN, OOF_VALUE = "oof_churn_", "oof_value_"
BASELINE = "baseline_churn_risk"


@dataclass
class Backtest:
    """Replayed plan on the campaign log (currency amounts over the logged customers)."""

    logged_customers: int
    chosen: int
    chosen_with_evidence: int     # chosen customers whose offer has treated and control rows
    predicted: float
    realised: float
    realised_low: float
    realised_high: float

    @property
    def realisation(self) -> float | None:
        return self.realised / self.predicted if self.predicted > 0 else None

    @property
    def realisation_interval(self) -> tuple[float, float] | None:
        if not self.predicted > 0:
            return None
        return self.realised_low / self.predicted, self.realised_high / self.predicted

    def to_dict(self) -> dict:
        out = asdict(self)
        out["realisation"] = self.realisation
        out["realisation_interval"] = (list(self.realisation_interval)
                                       if self.realisation_interval else None)
        return out


def backtest_table(campaign: pd.DataFrame, customers: pd.DataFrame, effects_churn,
                   effects_value=None, *, baseline_risk: np.ndarray | None = None,
                   effect_groups: np.ndarray | None = None,
                   treatment: str = "arm", propensity: str = "propensity") -> pd.DataFrame:
    """The logged rows the backtest needs: arm, propensity, outcomes, customer columns (no
    ids, no dates), the out-of-fold effects of each offer and, when given, the churn risk at
    assignment (probability) and the rows' effect groups (churn tier and top reason,
    :func:`uplift.effects.calibration.effect_groups`). ``campaign`` must be the table the
    effects models were fitted on, in the same row order."""
    oof = effects_churn.estimator_.oof_
    if len(oof) != len(campaign):
        raise ValueError("the campaign table is not the one the effects were fitted on")
    info = customers.set_index("customer_id").reindex(campaign["customer_id"]).reset_index(
        drop=True)
    info = info.drop(columns=[c for c in ("open_date", "close_date") if c in info.columns])
    out = pd.DataFrame({"arm": campaign[treatment].astype(str).to_numpy(),
                        "propensity": pd.to_numeric(campaign[propensity]).to_numpy(float),
                        "churned": campaign["churned"].to_numpy(float),
                        "value_after": campaign["value_after"].to_numpy(float)})
    out = pd.concat([out, info], axis=1)
    if baseline_risk is not None:
        out[BASELINE] = np.asarray(baseline_risk, dtype=float)
    if effect_groups is not None:
        out[EFFECT_GROUP] = np.asarray(effect_groups, dtype=object)
    for arm in effects_churn.arms:
        out[OOF_CHURN + arm] = oof[arm].to_numpy(float)
        if effects_value is not None:
            out[OOF_VALUE + arm] = effects_value.estimator_.oof_[arm].to_numpy(float)
    return out


def _scaled_counts(rule, scale: float):
    """A capacity or segment quota with its customer counts scaled to the log's size."""
    return rule.model_copy(update={
        "min_count": int(np.floor(rule.min_count * scale)),
        "max_count": None if rule.max_count is None else int(round(rule.max_count * scale))})


def replayed_plan(table: pd.DataFrame, spec: CampaignSpec, budget: float,
                  planned_customers: int, value: CustomerValue, *, seed: int = 0
                  ) -> tuple[np.ndarray, pd.DataFrame]:
    """The plan's rule on the logged customers: (offer index per row or -1, gains/costs table
    from the out-of-fold effects)."""
    from uplift.allocate import allocate
    from uplift.effects.gain import expected_gains

    offers = spec.offer_names
    churn = pd.DataFrame({f"effect_{o}": table[OOF_CHURN + o] for o in offers})
    value_effects = (pd.DataFrame({f"effect_{o}": table[OOF_VALUE + o] for o in offers})
                     if all(OOF_VALUE + o in table.columns for o in offers) else None)
    # the plan's rule: offers whose predictions fail the held-out test use effect-group
    # averages (offers with too few logged rows to test are replayed as predicted); a table
    # written before the groups existed falls back to the segments
    from uplift.effects.calibration import MIN_ROWS, all_evidence, coarse_effects

    evidence = {outcome: {k: e for k, e in per_offer.items()
                          if min(e.treated_rows, e.control_rows) >= MIN_ROWS}
                for outcome, per_offer in all_evidence(table, offers, value).items()}
    group_column = next((c for c in (EFFECT_GROUP, "segment") if c in table.columns), None)
    groups = table[group_column].to_numpy() if group_column else None
    from uplift.campaign import offer_eligibility

    allowed = offer_eligibility(table, spec, source="campaign log (backtest)")
    churn = coarse_effects(evidence["churn"], churn, groups, eligible=allowed)
    if value_effects is not None:
        value_effects = coarse_effects(evidence["value"], value_effects, groups,
                                       eligible=allowed)
    customers = table.assign(customer_id=np.arange(len(table)))
    if "marketing_consent" not in customers.columns:
        customers["marketing_consent"] = True
    gains = expected_gains(customers, churn, spec, value, value_effects=value_effects)
    scale = len(table) / max(planned_customers, 1)
    scaled = spec.model_copy(update={
        "capacities": [_scaled_counts(c, scale) for c in spec.capacities],
        "segment_quotas": [_scaled_counts(q, scale) for q in spec.segment_quotas],
        "do_not_contact": None, "contact_limit": None, "holdout_fraction": 0.0})
    frame = pd.concat([gains, customers.drop(columns="customer_id")], axis=1)
    choice = allocate(frame, scaled, budget=budget * scale, seed=seed,
                      source="campaign log (backtest)").solution.choice
    return choice, gains


def replay(table: pd.DataFrame, spec: CampaignSpec, budget: float, planned_customers: int,
           value: CustomerValue, *, control: str = "control", seed: int = 0) -> Backtest:
    """Replay the plan's rule on ``table`` (from :func:`backtest_table`) and measure it."""
    choice, gains = replayed_plan(table, spec, budget, planned_customers, value, seed=seed)
    return measure(table, choice, gains, spec.offer_names, control=control)


def measure(table: pd.DataFrame, choice: np.ndarray, gains: pd.DataFrame, offers: list[str],
            *, control: str = "control") -> Backtest:
    """Predicted and realised net gain of ``choice`` (offer index per logged row, -1 = none),
    with ``gains`` from :func:`replayed_plan`."""
    worth = gains["customer_value"].to_numpy(float)
    outcome_value = realised_value(table["churned"].to_numpy(float),
                                   table["value_after"].to_numpy(float), worth,
                                   table[BASELINE].to_numpy(float) if BASELINE in table.columns
                                   else None)
    arm = table["arm"].to_numpy()
    weight = 1.0 / np.clip(table["propensity"].to_numpy(float), 1e-3, 1.0)
    predicted = realised = variance = 0.0
    with_evidence = 0
    for k, offer in enumerate(offers):
        chosen = choice == k
        n = int(chosen.sum())
        if n == 0:
            continue
        cost = gains[f"cost_{offer}"].to_numpy(float)[chosen].sum()
        predicted += float(gains[f"gain_{offer}"].to_numpy(float)[chosen].sum())
        treated, untreated = chosen & (arm == offer), chosen & (arm == control)
        if not treated.any() or not untreated.any():
            realised -= cost          # no evidence either way: count the cost only
            continue
        with_evidence += n
        diff, var = 0.0, 0.0
        for rows, sign in ((treated, 1.0), (untreated, -1.0)):
            w, y = weight[rows], outcome_value[rows]
            mean = float(np.sum(w * y) / np.sum(w))
            diff += sign * mean
            var += float(np.sum(w**2 * (y - mean) ** 2) / np.sum(w) ** 2)
        realised += n * diff - cost
        variance += n**2 * var
    half = Z_TWO_SIDED_95 * float(np.sqrt(variance))
    return Backtest(len(table), int((choice >= 0).sum()), with_evidence, predicted, realised,
                    realised - half, realised + half)
