"""Every command that takes arms works with 1, 2 and 4 offers (+ control), binary and
continuous outcomes: effects fit / predict / evaluate (with the HTML report and the policy
tree), simulate-policy, the A/B evaluation and the allocator."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from uplift.cli import run

OFFERS = {1: ["email"], 2: ["email", "sms"], 4: ["email", "sms", "call", "visit"]}


def campaign(offers: list[str], outcome: str, n: int = 2400, seed: int = 0) -> pd.DataFrame:
    """A randomised campaign: ``email`` lifts the outcome where x1 > 0, the other offers do
    little; text ids (``C00001``...), one categorical feature."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    arms = ["none", *offers]
    arm = rng.choice(arms, n)
    lift = np.where((arm == "email") & (x1 > 0), 0.25, 0.0) + np.where(arm == "sms", 0.02, 0)
    base = 0.2 + 0.05 * np.tanh(x2)
    if outcome == "binary":
        y = (rng.random(n) < base + lift).astype(int)
    else:
        y = np.round(20 * (base + lift) + rng.normal(0, 2, n), 2)
    return pd.DataFrame({"cust": [f"C{i:05d}" for i in range(1, n + 1)], "x1": x1, "x2": x2,
                         "region": rng.choice(["north", "south", "east"], n), "arm": arm,
                         "y": y, "p": 1 / len(arms)})


@pytest.mark.parametrize("outcome", ["binary", "continuous"])
@pytest.mark.parametrize("k", [1, 2, 4])
def test_effects_commands_with_k_offers(tmp_path, capsys, k, outcome):
    offers = OFFERS[k]
    table = campaign(offers, outcome)
    table.to_csv(tmp_path / "c.csv", index=False)
    value = 1.0 if outcome == "binary" else 0.05     # email's lift is worth 0.25 either way
    costs = ",".join(f"{o}={0.1 if o == 'email' else 0.05}" for o in offers)
    assert run(["effects", "fit", "--table", str(tmp_path / "c.csv"), "--treatment", "arm",
                "--control", "none", "--outcome", "y", "--propensity", "p", "--learners", "t",
                "--folds", "2", "--out", str(tmp_path / "m")]) == 0
    printed = capsys.readouterr().out
    assert "recommendations ignore cost" in printed
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    assert meta["arms"] == sorted(offers)
    assert meta["excluded"] == {"cust": "id-like (every value distinct)"}
    report = (tmp_path / "m" / "report.html").read_text()
    assert report.count("<svg") == 1
    assert all(f">{o}<" in report for o in offers)           # one Qini panel per offer

    # predict on a scoring table with an extra column and no arm/outcome: ids carried
    score = table.drop(columns=["arm", "y", "p"]).assign(note="x")
    score.to_csv(tmp_path / "s.csv", index=False)
    assert run(["effects", "predict", "--model", str(tmp_path / "m"), "--table",
                str(tmp_path / "s.csv"), "--out", str(tmp_path / "pred.csv"), "--value",
                str(value), "--cost", costs]) == 0
    err = capsys.readouterr().err
    assert "ignoring 1 column(s) the model was not trained on: note" in err
    pred = pd.read_csv(tmp_path / "pred.csv")
    assert list(pred["cust"]) == list(table["cust"])
    assert {f"gain_{o}" for o in offers} <= set(pred.columns)
    effect = pred["effect_email"].to_numpy()
    np.testing.assert_allclose(pred["gain_email"], value * effect - 0.1, atol=1e-9)
    assert set(pred["recommended"]) <= {"none", *offers}
    right = table["x1"].to_numpy() > 0.5
    assert (pred["recommended"][right] == "email").mean() > 0.7
    assert (pred["recommended"][table["x1"].to_numpy() < -0.5] == "email").mean() < 0.2

    assert run(["effects", "evaluate", "--model", str(tmp_path / "m"), "--table",
                str(tmp_path / "c.csv"), "--boot", "20", "--value", str(value), "--cost",
                costs, "--json", str(tmp_path / "ev.json")]) == 0
    result = json.loads((tmp_path / "ev.json").read_text())
    assert set(result["metrics"]) == set(offers)
    policies = result["net_value"]["policies"]
    assert {"recommended", "no one", *(f"everyone: {o}" for o in offers)} == set(policies)
    rec = policies["recommended"]
    assert rec["low"] <= rec["net_value_per_customer"] <= rec["high"]
    assert rec["net_value_per_customer"] > 0                 # email where x1 > 0 pays
    assert rec["net_value_per_customer"] > policies["everyone: email"][
        "net_value_per_customer"] - rec["se"]
    email = result["net_value"]["recommended_set"]["email"]
    assert email["irr"] > 0.1 * (1 if outcome == "binary" else 20)

    assert run(["simulate-policy", "--log", str(tmp_path / "c.csv"), "--arm", "arm",
                "--control", "none", "--outcome", "y", "--propensity", "p", "--features",
                "x1,x2", "--policy", "none", "--policy", f"all:{offers[-1]}", "--policy",
                f"tree:{tmp_path / 'm'}", "--value", str(value), "--cost", costs, "--json",
                str(tmp_path / "sim.json"), "--report", str(tmp_path / "sim.html")]) == 0
    assert (tmp_path / "sim.html").read_text().count("<svg") >= 1
    sim = json.loads((tmp_path / "sim.json").read_text())["policies"]
    tree = sim[f"tree:{tmp_path / 'm'}"]
    assert tree["dr"]["value"] > sim["none"]["dr"]["value"]
    assert tree["treated_share"] == pytest.approx((pred["recommended"] != "none").mean(),
                                                  abs=1e-12)


@pytest.mark.parametrize("k", [1, 2, 4])
def test_ab_evaluation_and_allocation_with_k_offers(tmp_path, k):
    offers = OFFERS[k]
    table = campaign(offers, "binary", n=1200)
    table.to_csv(tmp_path / "c.csv", index=False)
    assert run(["--quiet", "evaluate", "--outcomes", str(tmp_path / "c.csv"), "--arm", "arm",
                "--control", "none", "--metric", "y", "--json",
                str(tmp_path / "ab.json"), "--report", str(tmp_path / "ab.html")]) == 0
    assert all(o in (tmp_path / "ab.html").read_text() for o in offers)
    assert set(json.loads((tmp_path / "ab.json").read_text())["arms"]) == set(offers)
    rng = np.random.default_rng(1)
    scores = pd.DataFrame({"customer_id": table["cust"],
                           "segment": rng.choice(["a", "b"], len(table))})
    for o in offers:
        scores[f"gain_{o}"] = rng.normal(1, 2, len(table))
        scores[f"cost_{o}"] = 1.0
    scores.to_csv(tmp_path / "scores.csv", index=False)
    spec = {"name": "k", "budget": 200, "holdout_fraction": 0.1, "require_consent": False,
            "holdout_stratify": ["segment"],
            "offers": [{"name": o, "channel": "email", "cost": {"fixed": 1.0}} for o in offers]}
    (tmp_path / "spec.yaml").write_text(json.dumps(spec))
    assert run(["--quiet", "allocate", "--scores", str(tmp_path / "scores.csv"), "--campaign",
                str(tmp_path / "spec.yaml"), "--out", str(tmp_path / "plan.csv")]) == 0
    plan = pd.read_csv(tmp_path / "plan.csv")
    assert set(plan.loc[plan["holdout"] == 0, "offer"]) <= set(offers)
    assert plan.loc[plan["holdout"] == 0, "cost"].sum() <= 200 + 1e-9
