"""From a plan to what people act on: the call list, the holdout list, the outlook and the
reason each left-out customer was left out.

Vocabulary (used the same way in the plan file, the console and the report):

* **selected** — customers the optimiser chose an offer for; the budget, capacities and
  quotas apply to this selection (its cost is the *budget used*);
* **held out** — a random share of the selected customers (stratified by segment and offer)
  who are *not* contacted, so the campaign can be measured;
* **contacted** — selected and not held out: the call list;
* **spend** — the cost of the contacted customers only (currency); it is at most the budget
  used, hence at most the budget.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from uplift.campaign import CampaignSpec, eligible
from uplift.valuation import Z_TWO_SIDED_95, total_interval

CONTACT = "contact"
HOLD_OUT = "hold out: do not contact"
LOW_CONFIDENCE = "low: gain lower bound < 0"

NOT_WORTH = "not worth contacting (no offer has a positive expected net gain)"
LEFT_BY_RULES = "worth contacting, but left out by the budget, capacities or quotas"


def check_holdout(plan: pd.DataFrame, held: np.ndarray, source: str) -> None:
    """Refuse a plan whose rows contradict their holdout flag (an edited plan): a contacted
    row (holdout 0) without an offer, or a row whose ``action`` says the other thing. Such
    a row would put a held-out customer on the call list, or charge an offer never made."""
    from uplift.errors import SchemaError
    from uplift.schema import rows_text

    problems = []
    if "offer" in plan.columns:
        offer = plan["offer"].astype("string").str.strip()
        blank = (~held & (offer.isna() | (offer == "")).to_numpy(dtype=bool, na_value=True))
        if blank.any():
            problems.append(f"column 'holdout': 0 (contacted) but no offer in "
                            f"{rows_text(blank)}; a held-out row edited to 0?")
    if "action" in plan.columns:
        action = plan["action"].astype("string").str.strip().str.lower()
        says_held = action.str.startswith("hold out").to_numpy(dtype=bool, na_value=False)
        known = action.isin([CONTACT, HOLD_OUT]).to_numpy(dtype=bool, na_value=False)
        clash = known & (says_held != held)
        if clash.any():
            problems.append(f"columns 'holdout' and 'action' disagree in {rows_text(clash)}")
    if problems:
        raise SchemaError(source, problems)


def add_details(plan: pd.DataFrame, scores: pd.DataFrame, spec: CampaignSpec,
                selected: np.ndarray, picked: np.ndarray, costs: np.ndarray) -> pd.DataFrame:
    """Add what a planner needs per plan row: the action, channel, offer description, the
    split of the expected net gain (retained value from lower churn, new-business margin,
    offer cost; currency) and the expected change in churn probability, when the scores
    carry ``customer_value`` and ``delta_churn_<offer>`` columns."""
    offers = spec.offer_names
    held = plan["holdout"].to_numpy() == 1
    # per-offer texts indexed by offer, with a last entry "" for held-out rows
    code = np.where(held, len(offers), picked)

    def text(values: list[str]) -> np.ndarray:
        return np.asarray([*values, ""], dtype=object)[code]

    plan.insert(1, "action", np.asarray([CONTACT, HOLD_OUT], dtype=object)[held.astype(int)])
    plan.insert(3, "planned_offer", np.asarray(offers, dtype=object)[picked])
    plan["offer"] = text(offers)
    plan["channel"] = text([o.channel for o in spec.offers])
    plan["offer_description"] = text([o.description for o in spec.offers])
    full_cost = costs[selected, picked]
    if "customer_value" in scores.columns and all(f"delta_churn_{o}" in scores.columns
                                                  for o in offers):
        delta = np.column_stack([scores[f"delta_churn_{o}"].to_numpy(float) for o in offers])
        d = delta[selected, picked]
        worth = scores["customer_value"].to_numpy(float)[selected]
        plan["customer_value"] = np.round(worth, 2)
        plan["churn_change"] = np.round(d, 6)
        se_cols = [f"se_churn_{o}" for o in offers]
        if all(c in scores.columns for c in se_cols):
            se = np.column_stack([scores[c].to_numpy(float) for c in se_cols])
            plan["churn_change_se"] = np.round(se[selected, picked], 6)
        plan["retained_value"] = np.round(-d * worth, 4)
        plan["new_business_margin"] = np.round(
            plan["expected_gain"].to_numpy() + full_cost - (-d * worth), 4)
    plan["offer_cost"] = np.round(full_cost, 4)
    if "exit_signal" in scores.columns:
        plan["exit_signal"] = scores["exit_signal"].to_numpy()[selected]
    return plan


def call_list(plan: pd.DataFrame) -> pd.DataFrame:
    """The contacted customers only (never the holdout), ranked by expected net gain (highest
    first; ties by id), with priority, channel, offer, description, main reason, exit signal
    and a confidence flag (``low`` when the gain's one-sided 95% lower bound is below 0)."""
    contacted = plan[plan["holdout"].astype(int) == 0]
    contacted = contacted.sort_values(["expected_gain", "customer_id"],
                                      ascending=[False, True], kind="stable")
    out = pd.DataFrame({"priority": np.arange(1, len(contacted) + 1),
                        "customer_id": contacted["customer_id"].to_numpy()})
    for col in ("offer", "channel", "offer_description"):
        out[col] = contacted[col].to_numpy() if col in contacted else ""
    out["expected_net_gain"] = contacted["expected_gain"].round(2).to_numpy()
    if "expected_gain_low" in contacted:
        low = contacted["expected_gain_low"].to_numpy(float)
        out["gain_lower_bound"] = np.round(low, 2)
        out["confidence"] = np.where(low < 0, LOW_CONFIDENCE, "ok")
    for col, name in (("reason_1", "main_reason"), ("exit_signal", "exit_signal"),
                      ("segment", "segment"), ("tier", "risk_tier"),
                      ("churn_risk", "churn_risk")):
        if col in contacted:
            out[name] = contacted[col].to_numpy()
    return out


def holdout_list(plan: pd.DataFrame) -> pd.DataFrame:
    """The held-out customers (not to be contacted), for the measurement step: id, the offer
    they would have got (their stratum), segment and assignment probability."""
    held = plan[plan["holdout"].astype(int) == 1]
    cols = [c for c in ("customer_id", "planned_offer", "segment", "assignment_probability")
            if c in held.columns]
    return held[cols].sort_values("customer_id", kind="stable").reset_index(drop=True)


def outlook(plan: pd.DataFrame, realisation: tuple[float, float, float] | None = None
            ) -> dict:
    """What the bank should expect from the contacted customers (currency; customers).

    ``expected_gain`` splits into ``retained_value`` (lower churn x customer value),
    ``new_business_margin`` and ``cost``. ``customers_kept`` = the sum of the predicted
    reductions in churn probability, with a 95% interval from the per-customer standard
    errors (independent errors assumed). ``realisation`` = (share, low, high) from the
    backtest scales the forecast, its interval and the customers kept; when that share is not
    above 0 (replayed on the past campaign, a plan made this way gained nothing or lost),
    ``warning`` says so."""
    contacted = plan[plan["holdout"].astype(int) == 0]
    gain = float(contacted["expected_gain"].sum())
    out: dict = {"contacted": int(len(contacted)), "expected_gain": gain,
                 "cost": float(contacted["cost"].sum())}
    if "retained_value" in contacted:
        out["retained_value"] = float(contacted["retained_value"].sum())
        out["new_business_margin"] = float(contacted["new_business_margin"].sum())
        kept = float(-contacted["churn_change"].sum())
        half = (Z_TWO_SIDED_95 * float(np.sqrt((contacted["churn_change_se"] ** 2).sum()))
                if "churn_change_se" in contacted else 0.0)
        out.update(customers_kept=kept, customers_kept_low=kept - half,
                   customers_kept_high=kept + half)
    if "expected_gain_low" in contacted:
        low, high = total_interval(contacted["expected_gain"], contacted["expected_gain_low"])
        out.update(expected_gain_low=low, expected_gain_high=high,
                   low_confidence=int((contacted["expected_gain_low"] < 0).sum()))
    if realisation is not None:
        share, low, high = (float(x) for x in realisation)
        out.update(realisation=share, forecast=share * gain, forecast_low=low * gain,
                   forecast_high=high * gain)
        if "customers_kept" in out:
            kept = out["customers_kept"]
            ends = sorted((low * kept, high * kept))
            out.update(forecast_kept=share * kept, forecast_kept_low=ends[0],
                       forecast_kept_high=ends[1])
        if share <= 0:
            out["warning"] = (
                f"replayed on the past campaign, a plan made this way realised {share:.2f} "
                "times its predicted gain (nothing, or a loss): the offers' predicted effects "
                "are not borne out by the campaign's outcomes; review them (the effects per "
                "offer below) before acting on this plan")
    return out


def exclusion_steps(scores: pd.DataFrame, spec: CampaignSpec, gains: np.ndarray,
                    costs: np.ndarray, allowed: np.ndarray, source: str = "scores"
                    ) -> list[tuple[np.ndarray, str]]:
    """Per-customer masks of the rules after the absolute ones, in the order they apply:
    not eligible for any offer, below the minimum ROI for every eligible offer, effect not
    confident, not worth contacting (no allowed offer with a positive expected net gain).
    Computed before the solver runs (``gains`` and ``costs`` in currency, (n, K)); the
    eligibility rules are evaluated again only for customers with no allowed offer."""
    n, k = allowed.shape
    any_allowed = np.zeros(n, dtype=bool)
    positive = np.zeros(n, dtype=bool)
    for j in range(k):                       # column by column: no (n, K) temporaries
        any_allowed |= allowed[:, j]
        positive |= allowed[:, j] & (gains[:, j] > 0)
    none_eligible = np.zeros(n, dtype=bool)
    none_roi = np.zeros(n, dtype=bool)
    rows = np.flatnonzero(~any_allowed)
    if len(rows):
        subset = scores.iloc[rows]
        elig = np.column_stack([eligible(subset, o, source=source) for o in spec.offers])
        roi_ok = elig.copy()
        for j, offer in enumerate(spec.offers):
            floor = spec.min_roi.get(offer.name)
            if floor is not None:
                g, c = gains[rows, j], costs[rows, j]
                roi = np.divide(g, c, out=np.full(len(rows), np.inf), where=c > 0)
                roi_ok[:, j] &= roi >= floor
        none_eligible[rows] = ~elig.any(axis=1)
        none_roi[rows] = ~roi_ok.any(axis=1)
    return [(none_eligible, "not eligible for any offer"),
            (none_roi, "below the minimum ROI for every eligible offer"),
            (~any_allowed, "effect not confident (gain lower bound <= 0)"),
            (~positive, NOT_WORTH)]


def left_out(choice: np.ndarray, blocked_by: np.ndarray,
             steps: list[tuple[np.ndarray, str]]) -> np.ndarray:
    """The rule that finally removed each customer from every offer ("" for the selected):
    the absolute rule in ``blocked_by`` (do-not-contact, consent, contact limit), else the
    first of ``steps`` (:func:`exclusion_steps`) that holds, else the budget, capacities or
    quotas."""
    reason = np.where(choice >= 0, "", blocked_by).astype(object)
    open_ = (choice < 0) & (blocked_by == "")
    for mask, text in [*steps, (np.ones(len(choice), dtype=bool), LEFT_BY_RULES)]:
        hit = open_ & mask & (reason == "")
        reason[hit] = text
    return reason


def blocked_reasons(scores: pd.DataFrame, spec: CampaignSpec, *, contacts=None, as_of=None,
                    do_not_contact=None, source: str = "scores") -> np.ndarray:
    """Per customer, the first absolute rule that blocks them ("" when none): the do-not-contact
    list or flag, missing marketing consent, the contact limit (same order as the counts of
    :func:`uplift.allocate.rules.excluded_customers`)."""
    from uplift.allocate.rules import excluded_customers

    reason = np.full(len(scores), "", dtype=object)
    stages = [("do-not-contact", spec.model_copy(update={"require_consent": False,
                                                          "contact_limit": None})),
              ("no marketing consent", spec.model_copy(update={"contact_limit": None})),
              ("contact limit reached", spec)]
    seen = np.zeros(len(scores), dtype=bool)
    for text, stage in stages:
        mask, _ = excluded_customers(scores, stage, contacts=contacts, as_of=as_of,
                                     do_not_contact=do_not_contact, source=source)
        reason[mask & ~seen] = text
        seen |= mask
    return reason


def left_out_list(customer_ids: pd.Series | np.ndarray, reasons: np.ndarray) -> pd.DataFrame:
    """One row per scored customer who was not selected, with the rule that finally removed
    them from every offer (``reasons`` from :func:`left_out`, "" for the selected)."""
    ids = np.asarray(customer_ids)
    out = reasons != ""
    return pd.DataFrame({"customer_id": ids[out], "left_out_because": reasons[out]})
