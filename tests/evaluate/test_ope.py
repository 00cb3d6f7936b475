"""Offline policy evaluation: estimator identities, unbiasedness on a known design, CLI."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from uplift.cli import run
from uplift.errors import InputError
from uplift.evaluate.ope import evaluate_policy, paired_difference


def logged(n: int = 20000, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    p_treat = np.where(x > 0, 0.7, 0.3)                 # known, unequal propensities
    arm = np.where(rng.random(n) < p_treat, "t", "c")
    prop = np.where(arm == "t", p_treat, 1 - p_treat)
    mean_c, mean_t = 0.3 + 0.1 * (x > 0), 0.3 + 0.1 * (x > 0) + 0.2 * (x < 0)
    y = (rng.random(n) < np.where(arm == "t", mean_t, mean_c)).astype(float)
    return x, arm, prop, y, mean_c, mean_t


def test_estimators_recover_a_known_policy_value():
    x, arm, prop, y, mean_c, mean_t = logged()
    policy = np.where(x < 0, "t", "c")
    truth = np.where(policy == "t", mean_t, mean_c).mean()
    q = pd.DataFrame({"c": mean_c, "t": mean_t})
    r = evaluate_policy(y, arm, prop, policy, q)
    for est in ("ipw", "snipw", "dr", "dm"):
        assert r[est]["low"] <= truth <= r[est]["high"], est
    assert r["dm"]["value"] == pytest.approx(truth)


def test_snipw_equals_the_weighted_mean_and_ess_is_bounded():
    x, arm, prop, y, *_ = logged(2000, seed=3)
    policy = np.full(len(y), "t")
    r = evaluate_policy(y, arm, prop, policy)
    w = (arm == "t") / prop
    assert r["snipw"]["value"] == pytest.approx((w * y).sum() / w.sum())
    assert 0 < r["effective_sample_size"] <= len(y)


def test_paired_difference_of_a_policy_with_itself_is_zero():
    x, arm, prop, y, mean_c, mean_t = logged(3000)
    policy = np.where(x < 0, "t", "c")
    d = paired_difference(y, arm, prop, policy, policy, pd.DataFrame({"c": mean_c,
                                                                     "t": mean_t}))
    assert all(v["value"] == 0 and v["se"] == 0 for v in d.values())


def test_bad_propensities_are_refused():
    x, arm, prop, y, *_ = logged(100)
    with pytest.raises(InputError, match=r"\(0, 1\]"):
        evaluate_policy(y, arm, np.where(prop > 0.5, 1.5, prop), np.full(100, "t"))


def test_cli_simulate_policy(tmp_path, capsys):
    import json

    x, arm, prop, y, mean_c, mean_t = logged(3000)
    pd.DataFrame({"customer_id": range(len(y)), "x": x, "arm": arm, "p": prop, "y": y,
                  "segment": np.where(x > 0, "hi", "lo")}).to_csv(tmp_path / "log.csv",
                                                                   index=False)
    base = ["simulate-policy", "--log", str(tmp_path / "log.csv"), "--arm", "arm", "--control",
            "c", "--outcome", "y", "--propensity", "p", "--features", "x"]
    assert run([*base, "--policy", "none", "--policy", "rule:segment:lo=t", "--policy",
                "all:t", "--json", str(tmp_path / "r.json"), "--report",
                str(tmp_path / "r.html")]) == 0
    capsys.readouterr()
    result = json.loads((tmp_path / "r.json").read_text())["policies"]
    # the design's true policy values, from the known outcome probabilities
    truth = {"none": mean_c.mean(), "all:t": mean_t.mean(),
             "rule:segment:lo=t": np.where(x <= 0, mean_t, mean_c).mean()}
    for spec, value in truth.items():
        for estimator in ("dr", "snipw", "ipw"):
            r = result[spec][estimator]
            assert r["low"] <= value <= r["high"], (spec, estimator)
            assert abs(r["value"] - value) < 0.03, (spec, estimator)
    assert result["rule:segment:lo=t"]["treated_share"] == pytest.approx((x <= 0).mean())
    html = (tmp_path / "r.html").read_text()
    assert f"{result['all:t']['dr']['value']:.4f}" in html      # the report shows the numbers
    assert run([*base, "--policy", "all:nothing"]) == 2
    assert "not in the log" in capsys.readouterr().err


def test_simulate_policy_never_uses_columns_measured_after_assignment(tmp_path, capsys):
    import json

    x, arm, prop, y, *_ = logged(3000)
    log = pd.DataFrame({"customer_id": range(len(y)), "x": x, "arm": arm, "p": prop, "y": y,
                        "value_after": y * 100 + x})
    log.to_csv(tmp_path / "log.csv", index=False)
    base = ["simulate-policy", "--log", str(tmp_path / "log.csv"), "--arm", "arm", "--control",
            "c", "--outcome", "y", "--propensity", "p", "--policy", "none", "--policy", "all:t"]
    assert run([*base, "--features", "x,value_after"]) == 2
    assert "value_after measured after assignment" in capsys.readouterr().err
    assert run([*base, "--json", str(tmp_path / "r.json")]) == 0
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["features"] == 1                         # x only: not value_after, not y
    assert "value_after" in result["excluded_after_assignment"]
    values = [r["dr"]["value"] for r in result["policies"].values()]
    assert abs(values[0] - values[1]) > 0.05                # policies are told apart
    log.drop(columns="x").to_csv(tmp_path / "bare.csv", index=False)   # nothing before assignment
    bare = [a if a != str(tmp_path / "log.csv") else str(tmp_path / "bare.csv") for a in base]
    assert run([*bare, "--json", str(tmp_path / "b.json")]) == 0
    assert json.loads((tmp_path / "b.json").read_text())["features"] == 0
