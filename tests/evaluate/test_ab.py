"""A/B evaluation: agreement with hand calculations and published figures, bad input."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from uplift.cli import run
from uplift.errors import SchemaError
from uplift.evaluate import evaluate_ab
from uplift.evaluate.ab import cuped

from ..conftest import SHARED_DATA


def synthetic(n: int = 4000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    arm = rng.choice(["control", "coupon", "visit"], n, p=[0.2, 0.4, 0.4])
    pre = rng.normal(100, 20, n)
    retained = (rng.random(n) < 0.80 + 0.05 * (arm == "coupon")).astype(int)
    value = retained * (pre * 0.5 + rng.normal(0, 5, n))
    cost = np.where(arm == "control", 0.0, np.where(arm == "coupon", 3.0, 20.0))
    return pd.DataFrame({"arm": arm, "retained": retained, "value": value, "pre": pre,
                         "cost": cost, "segment": rng.choice(["a", "b"], n)})


@settings(max_examples=25, deadline=None)
@given(st.integers(20, 400), st.integers(20, 400), st.floats(0.05, 0.95), st.floats(0.05, 0.95))
def test_lift_and_interval_match_a_hand_calculation(n1, n0, p1, p0):
    rng = np.random.default_rng(n1 * 1000 + n0)
    y1, y0 = (rng.random(n1) < p1).astype(int), (rng.random(n0) < p0).astype(int)
    if y1.min() == y1.max() or y0.min() == y0.max():
        return
    frame = pd.DataFrame({"arm": ["t"] * n1 + ["c"] * n0, "y": np.r_[y1, y0]})
    r = evaluate_ab(frame, arm="arm", control="c", metric="y")["arms"]["t"]
    m1, m0 = y1.mean(), y0.mean()
    se = np.sqrt(m1 * (1 - m1) / n1 + m0 * (1 - m0) / n0)
    assert r["lift"] == pytest.approx(m1 - m0)
    assert r["lift_low"] == pytest.approx(m1 - m0 - 1.959964 * se, abs=1e-6)
    assert r["lift_high"] == pytest.approx(m1 - m0 + 1.959964 * se, abs=1e-6)


def test_holm_correction_is_named_and_applied():
    r = evaluate_ab(synthetic(), arm="arm", control="control", metric="retained")
    assert r["correction"] == "holm"
    ps = sorted((v["p_value"], v["p_adjusted"]) for v in r["arms"].values())
    assert ps[0][1] == pytest.approx(min(1.0, 2 * ps[0][0]))


def test_cuped_reduces_variance_and_money_intervals_agree():
    r = evaluate_ab(synthetic(), arm="arm", control="control", metric="value", pre_metric="pre",
                    cost="cost", value="value", segment="segment", n_boot=300)
    assert r["arms"]["coupon"]["cuped"]["variance_reduction"] > 0.1
    money = r["money"]["coupon"]
    hand = _money_by_hand(synthetic(), "coupon", z=1.959963984540054)
    for key in ("incremental_value", "incremental_value_low", "incremental_value_high", "roi",
                "roi_low", "roi_high"):
        assert money[key] == pytest.approx(hand[key], rel=1e-6), key
    assert abs(money["roi_boot_low"] - money["roi_low"]) < 0.35 * abs(money["roi_high"]
                                                                     - money["roi_low"])
    assert set(money["by_segment"]) == {"a", "b"}


def _money_by_hand(frame: pd.DataFrame, arm: str, z: float) -> dict[str, float]:
    """Incremental value over the treated (n_t x difference in means), its normal interval
    from the two sample variances, and ROI = (increment - cost) / cost, written out here."""
    t = frame.loc[frame["arm"] == arm, "value"].to_numpy()
    c = frame.loc[frame["arm"] == "control", "value"].to_numpy()
    cost = frame.loc[frame["arm"] == arm, "cost"].sum()
    inc = len(t) * (t.mean() - c.mean())
    se = len(t) * np.sqrt(t.var(ddof=1) / len(t) + c.var(ddof=1) / len(c))
    return {"incremental_value": inc, "incremental_value_low": inc - z * se,
            "incremental_value_high": inc + z * se, "roi": (inc - cost) / cost,
            "roi_low": (inc - z * se - cost) / cost, "roi_high": (inc + z * se - cost) / cost}


def test_cli_evaluate_options_against_hand_calculations(tmp_path):
    """--alpha sets the interval width, --correction the adjustment, --pre-metric CUPED,
    --segment the money by segment; every number is recomputed here."""
    frame = synthetic(seed=4)
    frame.to_csv(tmp_path / "ab.csv", index=False)
    assert run(["--quiet", "evaluate", "--outcomes", str(tmp_path / "ab.csv"), "--arm", "arm",
                "--control", "control", "--metric", "value", "--pre-metric", "pre", "--cost",
                "cost", "--value", "value", "--segment", "segment", "--correction",
                "bonferroni", "--alpha", "0.1", "--json", str(tmp_path / "r.json")]) == 0
    r = json.loads((tmp_path / "r.json").read_text())
    z90 = 1.6448536269514722            # the 95% point of the standard normal
    for arm in ("coupon", "visit"):
        hand = _money_by_hand(frame, arm, z=z90)
        for key, value in hand.items():
            assert r["money"][arm][key] == pytest.approx(value, rel=1e-6), (arm, key)
        result = r["arms"][arm]
        assert result["p_adjusted"] == pytest.approx(min(1.0, 2 * result["p_value"]))
        y = frame["value"].to_numpy()
        x = frame["pre"].to_numpy()
        both = frame["arm"].isin([arm, "control"]).to_numpy()
        theta = np.cov(y[both], x[both])[0, 1] / np.var(x[both], ddof=1)
        assert result["cuped"]["theta"] == pytest.approx(theta, rel=0.05)
        for segment in ("a", "b"):
            part = frame[frame["segment"] == segment]
            by_segment = _money_by_hand(part, arm, z=z90)
            assert r["money"][arm]["by_segment"][segment]["roi"] == pytest.approx(
                by_segment["roi"], rel=1e-6)
    assert r["alpha"] == 0.1 and r["correction"] == "bonferroni"


def test_cuped_helper_hand_check():
    y, x = np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 2.0, 3.0, 5.0])
    adjusted, theta, _ = cuped(y, x)
    assert theta == pytest.approx(np.cov(y, x)[0, 1] / np.var(x, ddof=1))
    assert adjusted.mean() == pytest.approx(y.mean())


def test_sample_ratio_mismatch_is_flagged():
    frame = pd.DataFrame({"arm": ["c"] * 600 + ["t"] * 400, "y": [0, 1] * 500})
    r = evaluate_ab(frame, arm="arm", control="c", metric="y", planned_split={"c": 0.5, "t": 0.5})
    assert r["sample_ratio"]["mismatch"]


@pytest.mark.parametrize("mutate, args, message", [
    (lambda f: f, ["--control", "nobody"], "control value 'nobody' not found"),
    (lambda f: f.assign(retained=f["retained"].astype(str).replace("1", "yes!")), [],
     "expected numbers or 0/1"),
    (lambda f: f[f["arm"] != "coupon"].assign(arm=lambda d: d["arm"].where(
        d.index > 0, "coupon")), [], "arm 'coupon' has 1 row"),
])
def test_bad_input_exit_2(tmp_path, capsys, mutate, args, message):
    mutate(synthetic(300)).to_csv(tmp_path / "o.csv", index=False)
    argv = ["evaluate", "--outcomes", str(tmp_path / "o.csv"), "--arm", "arm", "--control",
            "control", "--metric", "retained", "--report", str(tmp_path / "r.html")]
    if args:
        argv[argv.index("--control") + 1] = args[1]
    assert run(argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()


@pytest.mark.skipif(not (SHARED_DATA / "cookie_cats").exists(), reason="Cookie Cats not available")
def test_cookie_cats(tmp_path, capsys):
    path = SHARED_DATA / "cookie_cats" / "cookie_cats.csv"
    assert run(["evaluate", "--outcomes", str(path), "--arm", "version", "--control", "gate_30",
                "--metric", "retention_7", "--split", "gate_30=0.5,gate_40=0.5", "--json",
                str(tmp_path / "r.json"), "--report", str(tmp_path / "r.html")]) == 0
    r = json.loads((tmp_path / "r.json").read_text())
    arm = r["arms"]["gate_40"]
    assert arm["mean_control"] == pytest.approx(0.1902, abs=5e-5)
    assert arm["mean"] == pytest.approx(0.1820, abs=5e-5)
    from statsmodels.stats.proportion import confint_proportions_2indep

    frame = pd.read_csv(path)
    a, b = frame[frame.version == "gate_40"], frame[frame.version == "gate_30"]
    low, high = confint_proportions_2indep(a.retention_7.sum(), len(a), b.retention_7.sum(),
                                           len(b), method="wald", compare="diff")
    assert (arm["lift_low"], arm["lift_high"]) == pytest.approx((low, high))
    assert not r["sample_ratio"]["mismatch"]
    assert "<svg" in (tmp_path / "r.html").read_text()


@pytest.mark.skipif(not (SHARED_DATA / "hillstrom").exists(), reason="Hillstrom not available")
def test_hillstrom_visit_lifts():
    frame = pd.read_csv(SHARED_DATA / "hillstrom" / "hillstrom.csv")
    r = evaluate_ab(frame, arm="segment", control="No E-Mail", metric="visit")
    mens, womens = r["arms"]["Mens E-Mail"], r["arms"]["Womens E-Mail"]
    assert (round(mens["lift"], 4), round(mens["lift_low"], 4), round(mens["lift_high"], 4)) \
        == (0.0766, 0.0700, 0.0832)
    assert (round(womens["lift"], 4), round(womens["lift_low"], 4),
            round(womens["lift_high"], 4)) == (0.0452, 0.0389, 0.0516)
    assert r["correction"] == "holm"


def test_text_metric_is_rejected():
    frame = synthetic(100).assign(retained="high")
    with pytest.raises(SchemaError, match="expected numbers"):
        evaluate_ab(frame, arm="arm", control="control", metric="retained")


def test_planned_arm_with_zero_rows_is_an_error():
    from uplift.errors import InputError

    frame = pd.DataFrame({"arm": ["c"] * 50 + ["t"] * 50, "y": [0, 1] * 50})
    with pytest.raises(InputError, match="zero rows"):
        evaluate_ab(frame, arm="arm", control="c", metric="y",
                    planned_split={"c": 0.4, "t": 0.4, "u": 0.2})


def test_non_uniform_design_needs_strata_and_strata_remove_the_bias():
    from uplift.errors import InputError

    rng = np.random.default_rng(4)
    n = 20000
    rich = rng.random(n) < 0.5
    p_treat = np.where(rich, 0.8, 0.2)                  # stratified randomisation
    arm = np.where(rng.random(n) < p_treat, "t", "c")
    value = np.where(rich, 1000.0, 10.0) + np.where(arm == "t", 5.0, 0.0) + rng.normal(0, 1, n)
    frame = pd.DataFrame({"arm": arm, "value": value, "cost": np.where(arm == "t", 1.0, 0.0),
                          "stratum": np.where(rich, "rich", "poor"),
                          "p": np.where(arm == "t", p_treat, 1 - p_treat)})
    with pytest.raises(InputError, match="non-uniform design"):
        evaluate_ab(frame, arm="arm", control="c", metric="value", cost="cost", value="value",
                    propensity="p")
    r = evaluate_ab(frame, arm="arm", control="c", metric="value", cost="cost", value="value",
                    strata="stratum", n_boot=100)
    money = r["money"]["t"]
    per_treated = money["incremental_value"] / money["treated"]
    assert per_treated == pytest.approx(5.0, abs=0.2)
    assert money["roi_low"] <= 4.0 <= money["roi_high"]


def test_arms_are_compared_with_the_controls_of_their_own_strata():
    from uplift.evaluate import evaluate_ab

    rng = np.random.default_rng(4)
    n = 20_000
    stratum = np.where(rng.random(n) < 0.5, "rich", "young")       # the planned offer's cell
    held = rng.random(n) < 0.2
    arm = np.where(held, "control", np.where(stratum == "rich", "visit", "report"))
    base = np.where(stratum == "rich", 0.95, 0.70)                   # very different baselines
    effect = np.where(arm == "visit", 0.03, np.where(arm == "report", 0.05, 0.0))
    retained = (rng.random(n) < base + effect).astype(int)
    frame = pd.DataFrame({"arm": arm, "retained": retained, "stratum": stratum})
    result = evaluate_ab(frame, arm="arm", control="control", metric="retained",
                         strata="stratum")
    for name, truth in (("visit", 0.03), ("report", 0.05)):
        r = result["arms"][name]
        assert r["stratified"] and r["lift_low"] <= truth <= r["lift_high"], (name, r)
    plain = evaluate_ab(frame, arm="arm", control="control", metric="retained")
    assert plain["arms"]["visit"]["lift"] > 0.1          # against the pooled control: biased


def stratified_outcomes() -> pd.DataFrame:
    """Two strata of one offer; stratum 'thin' has a single control, so it cannot be
    compared. Costs 10 per treated customer."""
    rng = np.random.default_rng(7)
    rows = []
    for stratum, treated, controls in (("wide", 60, 20), ("thin", 14, 1)):
        for i in range(treated + controls):
            held = i >= treated
            rows.append({"customer_id": f"{stratum}{i:03d}", "stratum": stratum,
                         "arm": "control" if held else "waiver", "planned_offer": "waiver",
                         "retained": int(rng.random() < (0.7 if held else 0.8)),
                         "cost": 0.0 if held else 10.0,
                         "propensity": 0.25 if held else 0.75})
    frame = pd.DataFrame(rows)
    frame["value"] = frame["retained"] * 100.0
    return frame


def test_strata_left_out_are_named_and_not_charged():
    """A stratum without 2 controls is left out of the lift and of the money alike: its
    customers' cost is not set against the others' incremental value."""
    from uplift.report.console import ab_lines

    frame = stratified_outcomes()
    r = evaluate_ab(frame, arm="arm", control="control", metric="retained", cost="cost",
                    value="value", strata="stratum", propensity="propensity",
                    retention_metric=True, n_boot=50)
    money = r["money"]["waiver"]
    assert money["treated"] == 60 and money["cost"] == pytest.approx(600.0)
    assert money["left_out"] == {"thin": {"treated": 14, "control": 1}}
    wide = frame[frame["stratum"] == "wide"]
    by_hand = 60 * (wide.loc[wide["arm"] == "waiver", "value"].mean()
                    - wide.loc[wide["arm"] == "control", "value"].mean())
    assert money["incremental_value"] == pytest.approx(by_hand)
    assert r["arms"]["waiver"]["n_compared"] == 60
    assert r["control_mean"] == pytest.approx(frame.loc[frame["arm"] == "control",
                                                        "retained"].mean())
    text = "\n".join(ab_lines(r, "retained", "control", "holm"))
    assert f"mean {r['control_mean']:.4f} over 21 customers" in text
    assert "14 of 74 left out" in text and "thin (14 treated, 1 control)" in text
    from uplift.evaluate.report import ab_html

    page = ab_html(r, "t")
    assert "14 of 74 left out" in page and "over 21 customers" in page


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda f: pd.concat([f, f.iloc[:2]]), r"the same customer in rows 1, 2, 96, 97"),
    (lambda f: f.assign(cost=np.where(f.index == 3, -5.0, f["cost"])),
     r"column 'cost': negative costs in row 4"),
    (lambda f: f.assign(arm=np.where(f.index == 5, "coupon", f["arm"])),
     r"an offer other than the customer's planned_offer in row 6 \(e.g. 'coupon' for 'waiver'"),
    (lambda f: f.assign(propensity=np.where(f.index == 0, 0.6, f["propensity"])),
     r"vary within arm and stratum \('stratum'\), e.g. wide / waiver: 0.6 .. 0.75"),
])
def test_outcomes_that_would_make_the_evaluation_wrong_are_refused(mutate, message):
    from uplift.errors import InputError

    frame = mutate(stratified_outcomes()).reset_index(drop=True)
    with pytest.raises((SchemaError, InputError), match=message):
        evaluate_ab(frame, arm="arm", control="control", metric="retained", cost="cost",
                    value="value", strata="stratum", propensity="propensity", n_boot=20)


def test_an_interval_without_width_is_said_to_say_nothing(recwarn):
    frame = pd.DataFrame({"arm": ["t"] * 5 + ["c"] * 4, "y": [1] * 9})
    r = evaluate_ab(frame, arm="arm", control="c", metric="y")["arms"]["t"]
    assert r["lift_low"] == r["lift_high"] == 0 and "says nothing" in r["note"]
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_a_missing_column_is_refused_before_anything_is_computed(recwarn):
    frame = pd.DataFrame({"arm": ["t"] * 5 + ["c"] * 4, "y": [1] * 9})
    with pytest.raises(SchemaError, match=r"(?s)cost column 'spend' not found.*value column 'v'"):
        evaluate_ab(frame, arm="arm", control="c", metric="y", cost="spend", value="v")
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


@pytest.mark.parametrize(("yes", "no"), [("J", "N"), ("yes", "no"), ("X", "0"), (1, 0)])
def test_a_0_1_metric_reads_the_flag_spellings(yes, no):
    frame = synthetic(400)
    spelled = frame.assign(retained=np.where(frame["retained"] == 1, yes, no))
    plain = evaluate_ab(frame, arm="arm", control="control", metric="retained")
    other = evaluate_ab(spelled, arm="arm", control="control", metric="retained")
    assert other["binary"] and other["arms"] == plain["arms"]


def test_evaluate_outputs_carry_a_manifest(tmp_path, capsys):
    synthetic(400).to_csv(tmp_path / "o.csv", index=False)
    assert run(["--quiet", "evaluate", "--outcomes", str(tmp_path / "o.csv"), "--arm", "arm",
                "--control", "control", "--metric", "retained", "--json",
                str(tmp_path / "r.json"), "--report", str(tmp_path / "r.html")]) == 0
    assert capsys.readouterr().out == ""                # --quiet: the files only
    for name in ("r.json", "r.html"):
        manifest = json.loads((tmp_path / f"{name}.manifest.json").read_text())
        assert manifest["command"] == "evaluate" and manifest["arguments"]["metric"] == "retained"


def test_a_flag_metric_with_blanks_names_the_blank_rows():
    frame = synthetic(40)
    frame["retained"] = np.where(frame["retained"] == 1, "X", "N")
    frame.loc[[1, 6], "retained"] = ""
    with pytest.raises(SchemaError, match=r"column 'retained': empty values in rows 2, 7;"):
        evaluate_ab(frame, arm="arm", control="control", metric="retained")
