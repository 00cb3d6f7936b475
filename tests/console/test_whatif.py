"""The what-if curve is the allocator's plan at each budget: on a table small enough to
check by enumeration every point is the best selection within its budget (small banks are
solved exactly); on a larger one every point is feasible, certified, rises with the budget
and carries the binding rules' shadow prices."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from uplift.campaign import CampaignSpec
from uplift.console.whatif import FACTORS, curve, nearest, solve_curve


def _spec(**extra) -> CampaignSpec:
    return CampaignSpec.model_validate({
        "name": "t", "require_consent": False,
        "offers": [{"name": "a", "channel": "sms", "cost": {"fixed": 1}},
                   {"name": "b", "channel": "app", "cost": {"fixed": 1}}], **extra})


GAINS = np.array([[10.0, 12.0], [6.0, 1.0], [3.0, 8.0], [3.0, -1.0], [0.5, 0.2]])
COSTS = np.array([[2.0, 5.0], [2.0, 2.0], [3.0, 4.0], [3.0, 1.0], [1.0, 1.0]])


def _scores() -> pd.DataFrame:
    frame = pd.DataFrame({"customer_id": [f"c{i}" for i in range(len(GAINS))],
                          "segment": ["x"] * len(GAINS)})
    for k, offer in enumerate("ab"):
        frame[f"gain_{offer}"] = GAINS[:, k]
        frame[f"cost_{offer}"] = COSTS[:, k]
    return frame


def _best(budget: float, cap_a: int | None = None) -> float:
    """The best total gain of at most one offer per customer within ``budget``."""
    best = 0.0
    for choice in itertools.product((-1, 0, 1), repeat=len(GAINS)):
        rows = [(i, k) for i, k in enumerate(choice) if k >= 0]
        if cap_a is not None and sum(k == 0 for _, k in rows) > cap_a:
            continue
        if sum(COSTS[i, k] for i, k in rows) <= budget + 1e-9:
            best = max(best, sum(GAINS[i, k] for i, k in rows))
    return best


@pytest.mark.parametrize("cap_a", [None, 1])
def test_every_point_is_the_best_plan_within_its_budget(cap_a):
    extra = {"capacities": [{"offer": "a", "max_count": cap_a}]} if cap_a else {}
    spec = _spec(**extra)
    table = solve_curve(_scores(), spec, 10.0)
    assert len(table) == len(FACTORS)
    page = curve(table.to_dict(orient="records"), spec)
    assert not page["unsolved"]
    for point in page["points"]:
        assert point["gain"] == pytest.approx(_best(point["budget"], cap_a))
        assert point["spend"] <= point["budget"] + 1e-9
        assert sum(point["mix"].values()) == point["selected"]
        if cap_a:
            assert point["mix"]["a"] <= cap_a
    at_plan = nearest(page["points"], 10.0)
    assert at_plan["gain"] == pytest.approx(_best(10.0, cap_a))
    assert page["points"][0]["gain"] == 0 and page["points"][0]["selected"] == 0


def test_a_larger_bank_gets_certified_points_with_shadow_prices():
    """5,000 customers x 2 offers: solved by the Lagrangian method, each point certified,
    the curve rising with the budget, binding rules priced."""
    rng = np.random.default_rng(3)
    n = 5_000
    frame = pd.DataFrame({"customer_id": [f"c{i}" for i in range(n)],
                          "segment": rng.choice(["x", "y"], n)})
    for offer in "ab":
        cost = rng.uniform(1, 20, n)
        frame[f"cost_{offer}"] = cost
        frame[f"gain_{offer}"] = cost * rng.normal(1.2, 1.0, n)
    spec = _spec(capacities=[{"offer": "b", "max_count": 400}])
    table = solve_curve(frame, spec, 5_000.0)
    gains = table["expected_gain"].to_numpy()
    assert (np.diff(gains) >= -1e-3 * gains.max()).all()
    assert (table["bound"] >= table["expected_gain"] - 1e-6).all()
    page = curve(table.to_dict(orient="records"), spec)
    assert all(p["mix"]["b"] <= 400 for p in page["points"])
    tight = nearest(page["points"], 2_000.0)
    budget = [b for b in tight["binding"] if b["rule"].startswith("budget")]
    assert budget and budget[0]["shadow_price"] > 0
    assert budget[0]["unit"] == "gain per currency unit"
    assert tight["marginal_roi"] == pytest.approx(budget[0]["shadow_price"])
    capped = [b for p in page["points"] for b in p["binding"] if b["rule"].startswith("b ")]
    assert capped and all(b["unit"] == "gain per customer" and b["shadow_price"] > 0
                          for b in capped)


