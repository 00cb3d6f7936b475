"""The what-if curve on a table small enough to check by hand."""

from __future__ import annotations

import pandas as pd

from uplift.campaign import CampaignSpec


def _spec(**extra) -> CampaignSpec:
    return CampaignSpec.model_validate({
        "name": "t", "offers": [{"name": "a", "channel": "sms", "cost": {"fixed": 1}},
                                {"name": "b", "channel": "app", "cost": {"fixed": 1}}],
        **extra})


FRAME = pd.DataFrame({"segment": ["x"] * 4, "offer": ["a", "a", "b", "a"],
                      "gain": [10.0, 6.0, 8.0, 3.0], "cost": [2.0, 2.0, 4.0, 3.0]})
# gain per cost: 5.0 (a), 3.0 (a), 2.0 (b), 1.0 (a)


def _at(curve: dict, budget: float) -> dict:
    return min(curve["points"], key=lambda p: abs(p["budget"] - budget))


def test_prefix_by_gain_per_cost():
    from uplift.console.whatif import curve

    c = curve(FRAME, _spec(), points=12, top=11.0)            # grid steps of 1
    assert _at(c, 0)["gain"] == 0 and _at(c, 0)["marginal_roi"] == 5.0
    p = _at(c, 4.0)
    assert (p["spend"], p["gain"], p["selected"]) == (4.0, 16.0, 2)
    assert p["mix"] == {"a": 2, "b": 0} and p["marginal_roi"] == 2.0
    assert p["binding"] == [{"rule": "budget", "shadow_price": 2.0,
                             "unit": "gain per currency unit"}]
    full = _at(c, 11.0)
    assert (full["spend"], full["gain"], full["selected"]) == (11.0, 27.0, 4)
    assert full["binding"] == []                              # everyone fits
    gains = [p["gain"] for p in c["points"]]
    assert gains == sorted(gains)


def test_full_capacity_is_skipped_and_priced():
    from uplift.console.whatif import curve

    spec = _spec(capacities=[{"offer": "a", "max_count": 1}])
    c = curve(FRAME, spec, points=12, top=11.0)
    p = _at(c, 6.0)                   # a(10/2) taken, second a skipped, b(8/4) taken
    assert (p["spend"], p["gain"], p["mix"]) == (6.0, 18.0, {"a": 1, "b": 1})
    capacity = [b for b in p["binding"] if b["rule"].startswith("capacity of a")]
    # the skipped customer's gain less its cost at the budget's shadow price (0: all fit)
    assert capacity and capacity[0]["shadow_price"] == 6.0
