"""Held-out calibration (BLP) test per offer and the fallback to effect-group averages."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from uplift.effects.calibration import (
    ALL,
    GROUP,
    PER_CUSTOMER,
    all_evidence,
    blp_test,
    coarse_effects,
    effect_groups,
    group_means,
    group_sums,
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


def test_noise_predictions_fall_back_to_group_averages():
    evidence = offer_evidence(planted_log(6000, 1, signal=False), outcome="value")
    assert evidence["a"].use == PER_CUSTOMER
    b = evidence["b"]
    assert b.use == GROUP
    assert abs(b.slope) < 3 * b.slope_se
    assert "noise" in b.why
    assert b.to_dict()["use"] == GROUP and b.outcome == "value"


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
    assert evidence["a"].use == PER_CUSTOMER and evidence["b"].use == GROUP
    assert evidence["a"].average_effect == pytest.approx(-0.075, abs=0.03)
    assert evidence["a"].slope == pytest.approx(1.0, abs=0.35)


def test_too_few_rows_is_untested_and_coarse():
    log = planted_log(6000, 2, signal=True)
    log = log[(log["arm"] != "b") | (np.arange(len(log)) < 120)]
    e = offer_evidence(log, outcome="value")["b"]
    assert e.treated_rows < 50 and e.use == GROUP
    assert e.to_dict()["slope"] is None and "too few" in e.why


def test_coarse_effects_replace_only_failing_offers_by_group_means():
    evidence = offer_evidence(planted_log(6000, 1, signal=False), outcome="value")
    values = [1.0, 2.0] * 15 + [3.0, 5.0] * 15
    effects = pd.DataFrame({"effect_a": values, "effect_b": values, "se_b": np.arange(60.0)})
    groups = np.array(["red|fees"] * 30 + ["green"] * 30)
    out = coarse_effects(evidence, effects, groups)
    assert out["effect_a"].tolist() == values
    assert out["effect_b"].tolist() == [1.5] * 30 + [4.0] * 30
    assert out["se_b"].tolist() == list(np.arange(60.0))
    assert coarse_effects(evidence, effects, None)["effect_b"].tolist() == [2.75] * 60


def test_small_groups_take_their_tiers_mean_and_small_tiers_the_offers():
    evidence = offer_evidence(planted_log(6000, 1, signal=False), outcome="value")
    groups = np.array(["red|fees"] * 40 + ["red|rates"] * 5 + ["amber|fees"] * 3
                      + ["green"] * 52)
    b = np.concatenate([np.full(40, 1.0), np.full(5, 10.0), np.full(3, 7.0), np.full(52, 0.0)])
    effects = pd.DataFrame({"effect_a": b, "effect_b": b})
    out = coarse_effects(evidence, effects, groups)["effect_b"].to_numpy()
    red = (40 * 1.0 + 5 * 10.0) / 45
    overall = b.mean()
    assert out[:40] == pytest.approx([1.0] * 40)             # its own mean (40 >= 30)
    assert out[40:45] == pytest.approx([red] * 5)             # too small: the red tier's
    assert out[45:48] == pytest.approx([overall] * 3)         # amber has 3: the offer's
    assert out[48:] == pytest.approx([0.0] * 52)
    means = group_means(group_sums(evidence, effects, groups))["b"]
    assert means[ALL] == pytest.approx(overall) and means["red|*"] == pytest.approx(red)
    # a group never seen (another batch of the same scoring) takes its tier's mean
    unseen = coarse_effects(evidence, effects.iloc[:1], np.array(["red|balance"]),
                            means={"b": means})
    assert unseen["effect_b"].tolist() == pytest.approx([red])


def test_effect_groups_pool_green_and_split_the_others_by_reason():
    groups = effect_groups(np.array(["green", "green", "amber", "red", "red"], dtype=object),
                           np.array(["fees", "", "rates", "fees", None], dtype=object))
    assert groups.tolist() == ["green", "green", "amber|rates", "red|fees", "red"]


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 7))
def test_group_means_of_batches_equal_the_whole(seed, batches):
    """Sums of any split of the customers give the same means as the whole (the scores are
    made in batches and, on Spark, in partitions)."""
    rng = np.random.default_rng(seed)
    n = 300
    evidence = offer_evidence(planted_log(6000, 1, signal=False), outcome="value")
    groups = rng.choice(["green", "amber|fees", "red|fees", "red|rates", "red"], size=n,
                        p=[0.6, 0.1, 0.2, 0.07, 0.03])
    effects = pd.DataFrame({"effect_b": rng.normal(0, 1, n)})
    whole = group_means(group_sums(evidence, effects, groups))
    cuts = np.sort(rng.choice(np.arange(1, n), size=batches - 1, replace=False))
    parts = [group_sums(evidence, effects.iloc[lo:hi], groups[lo:hi])
             for lo, hi in zip(np.r_[0, cuts], np.r_[cuts, n], strict=True)]
    split = group_means(pd.concat(parts, ignore_index=True))
    assert split.keys() == whole.keys()
    for key, value in whole["b"].items():
        assert split["b"][key] == pytest.approx(value, rel=1e-12, abs=1e-12)


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
    assert churn.slope == alone.slope and churn.use == GROUP
    assert abs(churn.gain_slope) < 3 * churn.gain_slope_se
    assert "gain slope" in churn.why
    assert evidence["value"]["a"].use == GROUP


def grouped_log(n: int, seed: int) -> pd.DataFrame:
    """A randomised campaign (control 50%, offers 'b' and 'c' 25% each) whose true value
    effect is 40 in group 'red|rates', 0 in 'green', plus 30 x a customer trait. Offer 'b''s
    predictions get the groups right and the trait backwards (per customer: no signal;
    averaged per group: the truth); offer 'c''s are noise around group averages that have the
    groups backwards."""
    rng = np.random.default_rng(seed)
    group = rng.choice(["red|rates", "green"], size=n)
    arm = rng.choice(["control", "b", "c"], size=n, p=[0.5, 0.25, 0.25])
    trait = rng.normal(0, 1, n)
    by_group = np.where(group == "red|rates", 40.0, 0.0)
    tau = by_group + 30.0 * trait
    value_after = 100 + np.where(arm != "control", tau, 0.0) + rng.normal(0, 20, n)
    return pd.DataFrame({
        "arm": arm, "propensity": np.where(arm == "control", 0.5, 0.25), "churned": 0.0,
        "value_after": value_after, "aum": 0.0, "products_held": 0.0, "effect_group": group,
        "oof_churn_b": 0.0, "oof_churn_c": 0.0,
        "oof_value_b": by_group - 30.0 * trait + rng.normal(0, 20, n),
        "oof_value_c": 5.0 - by_group / 2 + rng.normal(0, 200, n)})


def test_group_averages_keep_the_spread_their_held_out_slope_supports():
    """Per-customer predictions of both offers carry no signal and fall back to groups; the
    groups' averages of 'b' carry the effect (slope near 1: their spread is kept), those of
    'c' have it backwards (slope below 0: every group gets the offer's measured average
    effect)."""
    log = grouped_log(20_000, 3)
    evidence = all_evidence(log)["value"]
    b, c = evidence["b"], evidence["c"]
    assert b.use == GROUP and c.use == GROUP
    assert b.group_slope == pytest.approx(1.0, abs=0.35) and b.group_scale > 0.6
    assert c.group_scale < 0.5
    assert "groups' averages have slope" in b.why
    effects = pd.DataFrame({"effect_b": log["oof_value_b"], "effect_c": log["oof_value_c"]})
    out = coarse_effects(evidence, effects, log["effect_group"].to_numpy())
    red = log["effect_group"].to_numpy() == "red|rates"
    assert out["effect_b"][red].iloc[0] - out["effect_b"][~red].iloc[0] == pytest.approx(
        40.0, abs=15.0)
    spread_c = out["effect_c"][red].iloc[0] - out["effect_c"][~red].iloc[0]
    assert abs(spread_c) < 10.0
    assert float(out["effect_c"].mean()) == pytest.approx(c.average_effect, abs=10.0)
    # a model folder trained before the groups were tested (no group slope): the plain
    # group means, as before
    from dataclasses import replace

    plain = {o: replace(e, group_slope=float("nan")) for o, e in evidence.items()}
    assert plain["b"].group_scale == 1.0
    means = group_means(group_sums(plain, effects, log["effect_group"].to_numpy()))
    assert coarse_effects(plain, effects, log["effect_group"].to_numpy())[
        "effect_b"][red].iloc[0] == pytest.approx(means["b"]["red|rates"])


GROUPED_EVIDENCE = all_evidence(grouped_log(2_000, 0))["value"]["c"]


@settings(max_examples=100, deadline=None)
@given(st.floats(-5, 5), st.floats(0.001, 5))
def test_the_groups_scale_is_a_shrunk_slope_within_0_and_1(slope, se):
    from dataclasses import replace

    e = replace(GROUPED_EVIDENCE, group_slope=slope, group_slope_se=se)
    assert 0.0 <= e.group_scale <= 1.0
    assert e.group_scale <= max(slope, 0.0) + 1e-12     # never more than the slope itself
    if slope <= se:
        assert e.group_scale == 0.0                      # within one SE of 0: no spread


def test_an_offer_for_some_customers_keeps_their_level_corrected_by_the_measured_bias():
    """An advisor visit only large accounts may get: its average over the whole past campaign
    (mostly small accounts) must not become the large accounts' effect. Groups without
    held-out support (scale 0) get the eligible customers' mean prediction moved by the bias
    the held-out rows measured (here the predictions ran 50 high)."""
    from dataclasses import replace

    e = replace(GROUPED_EVIDENCE, offer="advisor", outcome="value", use=GROUP,
                group_slope=-0.7, group_slope_se=1.3, average_effect=150.0,
                mean_prediction=200.0)
    assert e.group_scale == 0.0 and e.bias == -50.0
    effects = pd.DataFrame({"effect_advisor": [1000.0, 1200.0, 40.0, 60.0] * 10})
    large = np.array([True, True, False, False] * 10)
    groups = np.array(["red|rates", "green", "red|rates", "green"] * 10)
    out = coarse_effects({"advisor": e}, effects, groups, eligible={"advisor": large})
    assert out["effect_advisor"][large].tolist() == pytest.approx([1100.0 - 50.0] * 20)
    assert "corrected by the predictions' measured bias (-50)" in e.why
