"""Held-out calibration (BLP) test per offer and the fallback to segment-average effects."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from uplift.effects.calibration import (
    PER_CUSTOMER,
    SEGMENT,
    all_evidence,
    blp_test,
    coarse_effects,
    offer_evidence,
)


def planted_log(n: int, seed: int, signal: bool) -> pd.DataFrame:
    """A randomised campaign (control 40%, offer 'a' 30%, offer 'b' 30%) whose true effect on
    value varies with x; out-of-fold predictions equal the truth plus noise for 'a' and are
    the truth (signal) or pure noise (no signal) for 'b'."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, n)
    arm = rng.choice(["control", "a", "b"], size=n, p=[0.4, 0.3, 0.3])
    propensity = np.select([arm == "control", arm == "a"], [0.4, 0.3], 0.3)
    tau = 20.0 * x                       # true effect on value (currency)
    value_after = 50 + 10 * x + np.where(arm != "control", tau, 0.0) + rng.normal(0, 30, n)
    pred_b = tau if signal else rng.normal(0, 20, n)
    return pd.DataFrame({
        "arm": arm, "propensity": propensity, "churned": 0.0, "value_after": value_after,
        "aum": 0.0, "products_held": 0.0, "segment": np.where(x > 0, "high", "low"),
        "oof_churn_a": 0.0, "oof_churn_b": 0.0,
        "oof_value_a": tau + rng.normal(0, 5, n), "oof_value_b": pred_b})


def test_predictions_with_signal_keep_per_customer_effects():
    evidence = offer_evidence(planted_log(6000, 0, signal=True), outcome="value")
    for offer in ("a", "b"):
        e = evidence[offer]
        assert e.use == PER_CUSTOMER
        assert e.slope == pytest.approx(1.0, abs=0.15)
        assert 0 < e.slope_se < 0.1


def test_noise_predictions_fall_back_to_segment_averages():
    evidence = offer_evidence(planted_log(6000, 1, signal=False), outcome="value")
    assert evidence["a"].use == PER_CUSTOMER
    b = evidence["b"]
    assert b.use == SEGMENT
    assert abs(b.slope) < 3 * b.slope_se
    assert "noise" in b.why
    assert b.to_dict()["use"] == SEGMENT and b.outcome == "value"


def test_churn_effects_are_tested_on_churn():
    """Planted churn effects: offer 'a' lowers churn for x > 0 only, and its predictions say
    so; offer 'b' has random predictions."""
    rng = np.random.default_rng(6)
    n = 8000
    x = rng.normal(0, 1, n)
    arm = rng.choice(["control", "a", "b"], size=n, p=[0.4, 0.3, 0.3])
    tau = np.where(x > 0, -0.15, 0.0)
    churned = (rng.random(n) < 0.25 + np.where(arm != "control", tau, 0.0)).astype(float)
    log = pd.DataFrame({"arm": arm, "propensity": np.where(arm == "control", 0.4, 0.3),
                        "churned": churned, "value_after": 0.0,
                        "oof_churn_a": tau + rng.normal(0, 0.02, n),
                        "oof_churn_b": rng.normal(-0.07, 0.05, n)})
    evidence = offer_evidence(log, outcome="churn")
    assert evidence["a"].use == PER_CUSTOMER and evidence["b"].use == SEGMENT
    assert evidence["a"].average_effect == pytest.approx(-0.075, abs=0.03)
    assert evidence["a"].slope == pytest.approx(1.0, abs=0.35)


def test_too_few_rows_is_untested_and_coarse():
    log = planted_log(6000, 2, signal=True)
    log = log[(log["arm"] != "b") | (np.arange(len(log)) < 120)]
    e = offer_evidence(log, outcome="value")["b"]
    assert e.treated_rows < 50 and e.use == SEGMENT
    assert e.to_dict()["slope"] is None and "too few" in e.why


def test_coarse_effects_replace_only_failing_offers_by_segment_means():
    evidence = offer_evidence(planted_log(6000, 1, signal=False), outcome="value")
    effects = pd.DataFrame({"effect_a": [1.0, 2.0, 3.0, 5.0], "effect_b": [1.0, 2.0, 3.0, 5.0],
                            "se_b": [0.1, 0.2, 0.3, 0.4]})
    out = coarse_effects(evidence, effects, np.array(["x", "x", "y", "y"]))
    assert out["effect_a"].tolist() == [1.0, 2.0, 3.0, 5.0]
    assert out["effect_b"].tolist() == [1.5, 1.5, 4.0, 4.0]
    assert out["se_b"].tolist() == [0.1, 0.2, 0.3, 0.4]
    assert coarse_effects(evidence, effects, None)["effect_b"].tolist() == [2.75] * 4


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.floats(-3, 3), st.floats(0.1, 5))
def test_blp_recovers_a_planted_linear_effect(seed, intercept, slope):
    """Noise-free outcomes: y = base + D * (intercept + slope * (s - mean s)) exactly."""
    rng = np.random.default_rng(seed)
    s = rng.normal(0, 1, 400)
    d = rng.random(400) < 0.5
    w = np.where(d, 2.0, 2.0)
    y = 3.0 + 0.5 * s + d * (intercept + slope * (s - s.mean()))
    b1, _, b2, se2 = blp_test(y, d, s, w)
    assert b1 == pytest.approx(intercept, abs=1e-6)
    assert b2 == pytest.approx(slope, abs=1e-6)
    assert se2 < 1e-6


def test_an_effect_with_signal_falls_back_when_the_gain_built_from_it_is_noise():
    """Churn predictions carry signal, but pure-noise value predictions on large accounts
    swamp the money gain the allocator ranks by: both effects fall back."""
    rng = np.random.default_rng(6)
    n = 8000
    x = rng.normal(0, 1, n)
    arm = rng.choice(["control", "a"], size=n, p=[0.5, 0.5])
    tau = np.where(x > 0, -0.15, 0.0)
    churned = (rng.random(n) < 0.25 + np.where(arm != "control", tau, 0.0)).astype(float)
    log = pd.DataFrame({"arm": arm, "propensity": 0.5, "churned": churned,
                        "value_after": rng.normal(100, 20, n), "aum": 10_000.0,
                        "products_held": 1.0, "oof_churn_a": tau + rng.normal(0, 0.02, n),
                        "oof_value_a": rng.normal(0, 400, n)})
    alone = offer_evidence(log, outcome="churn")["a"]
    assert alone.use == PER_CUSTOMER
    evidence = all_evidence(log)
    churn = evidence["churn"]["a"]
    assert churn.slope == alone.slope and churn.use == SEGMENT
    assert abs(churn.gain_slope) < 3 * churn.gain_slope_se
    assert "gain slope" in churn.why
    assert evidence["value"]["a"].use == SEGMENT
