"""The plan backtest: replayed choices and realised gain against a hand calculation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from uplift.campaign import CampaignSpec
from uplift.config import CustomerValue
from uplift.evaluate.backtest import replay

VALUE = CustomerValue(aum_rate=0.0, per_product=0.0, base=100.0)   # every customer worth 100


def spec(capacity: int | None = None) -> CampaignSpec:
    return CampaignSpec.model_validate({
        "name": "t", "holdout_fraction": 0.1,
        "offers": [{"name": "call", "channel": "phone", "cost": {"fixed": 5.0}}],
        "capacities": [] if capacity is None else [{"offer": "call", "max_count": capacity}]})


def log(arms: list[str], churned: list[int], effect: list[float],
        propensity: list[float] | None = None) -> pd.DataFrame:
    n = len(arms)
    return pd.DataFrame({"arm": arms, "propensity": propensity or [0.5] * n,
                         "churned": churned, "value_after": [0.0] * n,
                         "segment": ["s"] * n, "aum": [0.0] * n, "products_held": [1] * n,
                         "marketing_consent": [True] * n, "oof_churn_call": effect})


def test_realised_gain_matches_a_hand_calculation():
    # rows 0-3 are predicted to gain from the call (effect -0.2: gain 0.2*100 - 5 = 15);
    # rows 4-5 are predicted to be harmed and are not chosen
    table = log(["call", "call", "control", "control", "call", "control"],
                [0, 0, 1, 0, 1, 0], [-0.2, -0.2, -0.2, -0.2, 0.3, 0.3])
    result = replay(table, spec(), budget=1000, planned_customers=6, value=VALUE)
    assert result.chosen == 4 and result.chosen_with_evidence == 4
    assert result.predicted == pytest.approx(4 * 15.0)
    # among the chosen: treated churn 0/2, control churn 1/2 -> +0.5 * 100 per customer
    assert result.realised == pytest.approx(4 * 0.5 * 100 - 4 * 5.0)
    assert result.realisation == pytest.approx(180 / 60)
    # Hajek variance: treated part 0; control part sum(w^2 (y - mean)^2) / (sum w)^2
    control_var = 2 * 4 * 50.0**2 / 4**2
    half = 1.96 * np.sqrt(4**2 * control_var)
    assert result.realised_low == pytest.approx(result.realised - half)


def test_capacity_is_scaled_to_the_log():
    table = log(["call", "control"] * 10, [0, 1] * 10, [-0.1] * 20)
    # the plan covers 200 customers with 50 calls; the 20-row log may take 5
    assert replay(table, spec(capacity=50), 1e6, 200, VALUE).chosen == 5


def test_no_control_customers_counts_only_the_cost():
    table = log(["call"] * 4, [0, 0, 0, 1], [-0.2] * 4)
    result = replay(table, spec(), 1000, 4, VALUE)
    assert result.chosen_with_evidence == 0
    assert result.realised == pytest.approx(-4 * 5.0)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.booleans(), st.floats(0.1, 0.9)),
                min_size=4, max_size=30))
def test_weights_follow_the_logged_propensities(rows):
    """With every customer chosen, the realised gain equals the weighted difference in means
    computed directly (self-normalised IPW)."""
    arms = ["call" if r[0] else "control" for r in rows]
    churned = [int(r[1]) for r in rows]
    p = [r[2] for r in rows]
    table = log(arms, churned, [-0.5] * len(rows), p)
    result = replay(table, spec(), 1e9, len(rows), VALUE)
    value = -100.0 * np.array(churned)
    w = 1 / np.array(p)
    treated, control = np.array(arms) == "call", np.array(arms) == "control"
    if treated.any() and control.any():
        diff = (np.average(value[treated], weights=w[treated])
                - np.average(value[control], weights=w[control]))
        assert result.realised == pytest.approx(len(rows) * diff - 5.0 * len(rows))
    else:
        assert result.realised == pytest.approx(-5.0 * len(rows))


def test_a_baseline_keeps_the_estimate_and_narrows_the_interval():
    rng = np.random.default_rng(3)
    n = 4000
    risk = rng.choice([0.02, 0.9], n)       # customers differ a lot in risk
    arms = np.where(rng.random(n) < 0.5, "call", "control")
    churned = (rng.random(n) < np.where(arms == "call", 0.8 * risk, risk)).astype(int)
    table = log(list(arms), list(churned), [-0.1] * n)
    plain = replay(table, spec(), 1e9, n, VALUE)
    constant = replay(table.assign(baseline_churn_risk=0.3), spec(), 1e9, n, VALUE)
    adjusted = replay(table.assign(baseline_churn_risk=risk), spec(), 1e9, n, VALUE)
    assert constant.realised == pytest.approx(plain.realised)     # a constant cancels out
    true_gain = n * 0.2 * risk.mean() * 100 - 5.0 * n
    for result in (plain, adjusted):
        assert result.realised_low <= true_gain <= result.realised_high
    width = lambda r: r.realised_high - r.realised_low  # noqa: E731
    assert width(adjusted) < 0.9 * width(plain)
