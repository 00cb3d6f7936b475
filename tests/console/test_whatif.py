"""The what-if curve is the allocator's plan at each budget: on a table small enough to
check by enumeration, every point is a feasible selection whose certificate (bound) covers
the best any selection within that budget achieves, the plan's own budget reaches that best,
and the page's fields (mix, binding rules, marginal ROI) follow from it."""

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
    for point, row in zip(page["points"], table.itertuples(), strict=True):
        optimum = _best(point["budget"], cap_a)
        assert point["gain"] <= optimum + 1e-9                       # never above the truth
        assert row.bound >= optimum - 1e-6                           # the certificate holds
        assert point["spend"] <= point["budget"] + 1e-9
        assert sum(point["mix"].values()) == point["selected"]
        if cap_a:
            assert point["mix"]["a"] <= cap_a
    at_plan = nearest(page["points"], 10.0)
    assert at_plan["gain"] == pytest.approx(_best(10.0, cap_a))
    assert page["points"][0]["gain"] == 0 and page["points"][0]["selected"] == 0


def test_the_curve_rises_with_the_budget_on_a_realistic_table():
    """On five customers the Lagrangian plan of a larger budget can be worse than a smaller
    one's (its certificate says by how much); at realistic sizes the gaps vanish and the
    curve rises: checked on 3,000 customers."""
    rng = np.random.default_rng(3)
    n = 3_000
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
    assert page["points"][-1]["mix"]["b"] <= 400


def test_binding_rules_carry_shadow_prices():
    spec = _spec(capacities=[{"offer": "a", "max_count": 1}])
    page = curve(solve_curve(_scores(), spec, 10.0).to_dict(orient="records"), spec)
    tight = nearest(page["points"], 4.0)
    budget = [b for b in tight["binding"] if b["rule"].startswith("budget")]
    assert budget and budget[0]["shadow_price"] > 0 and budget[0]["unit"] == \
        "gain per currency unit"
    assert tight["marginal_roi"] == pytest.approx(budget[0]["shadow_price"])
    roomy = page["points"][-1]                        # twice the plan's budget: all that gains
    assert roomy["gain"] == pytest.approx(_best(1e9, 1))
