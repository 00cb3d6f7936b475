"""Money in the effects path: cost parsing, net gains, net-value recommendations, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from uplift.cli import run
from uplift.effects import UpliftEstimator
from uplift.effects.money import Money, build_money, cost_matrix, parse_costs
from uplift.errors import InputError, SchemaError

from .test_arm_counts import campaign


def test_cost_specs_parse_numbers_columns_and_defaults():
    assert parse_costs(["email=0.15,sms=cost_sms", "visit=2"]) == {
        "email": 0.15, "sms": "cost_sms", "visit": 2.0}
    money = build_money(10.0, ["0.5", "sms=0.1"], ["email", "sms"], "none")
    assert money == Money(10.0, {"email": 0.5, "sms": 0.1})
    assert build_money(None, None, ["a"], "none") is None
    assert build_money(3.0, None, ["a"], "none") == Money(3.0, {})


@pytest.mark.parametrize("value, costs, message", [
    (None, ["a=1"], "costs need a value"),
    (0.0, None, "the value must be a positive amount"),
    (1.0, ["a=1"], "no cost given for b"),
    (1.0, ["a=1", "b=1", "c=2"], "unknown arm(s) c"),
    (1.0, ["a=-1", "b=1"], "finite amount >= 0"),
    (1.0, ["none=1"], "control costs nothing"),
    (1.0, ["a=1", "a=2"], "given a cost twice"),
])
def test_bad_money_options_are_refused(value, costs, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        build_money(value, costs, ["a", "b"], "none")


def test_cost_columns_are_checked_with_rows():
    table = pd.DataFrame({"c": [1.0, -2.0, np.nan]})
    with pytest.raises(SchemaError, match="cost missing or not a number in row 3"):
        cost_matrix(Money(1.0, {"a": "c"}), table, ["a"])
    with pytest.raises(SchemaError, match="negative costs in row 2"):
        cost_matrix(Money(1.0, {"a": "c"}), table.iloc[:2], ["a"])
    assert cost_matrix(Money(1.0, {"a": "c", "b": 0.5}), table.iloc[:1], ["a", "b"]).tolist() \
        == [[1.0, 0.5]]


@pytest.fixture(scope="module")
def fitted():
    table = campaign(["email", "sms"], "binary", n=4000, seed=3)
    est = UpliftEstimator(learners=("t",), n_folds=2, goal="increase", control="none",
                          random_state=0)
    X = table[["x1", "x2"]].to_numpy()
    est.fit(X, table["y"].to_numpy(), treatment=table["arm"].to_numpy(),
            propensity=table["p"].to_numpy())
    return est, X, table


def test_net_value_policy_follows_costs(fitted):
    est, X, table = fitted
    policy = est.policy_
    n = len(X)
    free = policy.predict_net(X, value=1.0, costs=np.zeros((n, 2)), z=1.0)
    assert (free[table["x1"].to_numpy() > 0.5] == "email").mean() > 0.8
    dear = policy.predict_net(X, value=1.0, costs=np.full((n, 2), 0.5), z=1.0)
    assert (dear == "none").all()                    # no offer earns 0.5 a customer
    # email costs more than its lift where x1 < 0 (lift 0): control there even when free-ish
    priced = policy.predict_net(X, value=1.0, costs=np.column_stack(
        [np.full(n, 0.1), np.full(n, 0.1)]), z=1.0)
    assert (priced[table["x1"].to_numpy() < -0.5] == "none").mean() > 0.8
    # a per-customer cost: email free for half the customers, prohibitive for the others
    cheap = np.arange(n) % 2 == 0
    mixed = policy.predict_net(X, value=1.0, costs=np.column_stack(
        [np.where(cheap, 0.0, 5.0), np.full(n, 5.0)]), z=1.0)
    assert not (mixed[~cheap] == "email").any()
    # more evidence never treats more customers
    assert (policy.predict_net(X, value=1.0, costs=np.zeros((n, 2)), z=2.0) != "none").sum() \
        <= (free != "none").sum()


def test_money_options_on_the_command_line_exit_2(tmp_path, capsys):
    table = campaign(["email"], "binary", n=600)
    table.to_csv(tmp_path / "c.csv", index=False)
    base = ["effects", "fit", "--table", str(tmp_path / "c.csv"), "--treatment", "arm",
            "--control", "none", "--outcome", "y", "--learners", "t", "--folds", "2",
            "--out", str(tmp_path / "m")]
    assert run([*base, "--cost", "email=0.1"]) == 2
    assert "costs need a value" in capsys.readouterr().err
    assert run([*base, "--value", "1", "--cost", "email=price"]) == 2
    assert "cost column 'price' (cost of email) not found" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()
    table.assign(price=0.1).to_csv(tmp_path / "c.csv", index=False)
    assert run([*base, "--value", "1", "--cost", "email=price", "--features",
                "x1,x2,price"]) == 2
    assert "price named in features also serve" in capsys.readouterr().err
    assert run([*base, "--value", "1", "--cost", "email=price"]) == 0
    out = capsys.readouterr().out
    assert "recommendations maximise expected net value" in out
    # the cost column is not a feature; predict needs it and keeps the stored money
    table.drop(columns=["arm", "y", "p"]).to_csv(tmp_path / "s.csv", index=False)
    assert run(["effects", "predict", "--model", str(tmp_path / "m"), "--table",
                str(tmp_path / "s.csv"), "--out", str(tmp_path / "p.csv")]) == 2
    assert "cost column 'price'" in capsys.readouterr().err
    assert not (tmp_path / "p.csv").exists()
    table.drop(columns=["arm", "y", "p"]).assign(price=0.2).to_csv(tmp_path / "s.csv",
                                                                    index=False)
    assert run(["effects", "predict", "--model", str(tmp_path / "m"), "--table",
                str(tmp_path / "s.csv"), "--out", str(tmp_path / "p.csv")]) == 0
    pred = pd.read_csv(tmp_path / "p.csv")
    np.testing.assert_allclose(pred["gain_email"], pred["effect_email"] - 0.2, atol=1e-9)
