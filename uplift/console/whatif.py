"""The what-if budget curve: the allocator's own plans at a grid of budgets, solved once per
plan so a budget slider answers at once.

At each of :data:`FACTORS` times the plan's budget (0 to twice it) the allocator solves the
plan's problem again -- the same scores and rules as the plan (share rules scale with the
budget; a minimum a small budget cannot meet is dropped at that point and named), exactly for
small banks (up to 2,000 customers with four offers) and by the Lagrangian method with its
certificate above that: the best
achievable expected net gain, its spend, the customers per offer and each binding rule's
shadow price (:func:`uplift.allocate.result.budget_curve`). The marginal ROI at a point is the
budget's shadow price (gain per extra currency unit), or the slope from the previous point
where the exact solver gave the point (it gives no prices).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from uplift.campaign import CampaignSpec

#: budgets of the what-if curve, as multiples of the plan's budget
FACTORS = np.linspace(0.0, 2.0, 41)


def solve_curve(scores: pd.DataFrame, spec: CampaignSpec, budget: float, *,
                do_not_contact: pd.DataFrame | None = None, confident: bool = False,
                seed: int = 0) -> pd.DataFrame:
    """The curve's points (budget, spend, expected_gain, bound, selected, rules, mix, prices)
    for ``scores`` as the planner scores customers (``gain_<offer>`` and ``cost_<offer>``
    columns and the customer columns the spec's rules read); money in the spec's currency."""
    from uplift.allocate import allocate
    from uplift.allocate.plan import ScoreTable

    result = allocate(ScoreTable.from_frame(scores, spec.offer_names, "scores"), spec,
                      budget=budget, confident=confident, seed=seed, curve_factors=FACTORS,
                      do_not_contact=do_not_contact, source="scores")
    return result.curve


def curve(points: list[dict[str, Any]], spec: CampaignSpec) -> dict[str, Any]:
    """The page's curve from solved points (records of :func:`solve_curve`, JSON-read):
    budget, spend, gain, customers, marginal ROI, offer mix and binding rules per point.
    Points where the rules cannot be met are left out and listed in ``unsolved``."""
    out, unsolved, previous = [], [], None
    for p in sorted(points, key=lambda q: q["budget"]):
        gain = p.get("expected_gain")
        if gain is None or not math.isfinite(gain):
            unsolved.append({"budget": p["budget"], "why": p.get("rules") or "infeasible"})
            continue
        binding = [{"rule": b["rule"], "shadow_price": b["shadow_price"],
                    "unit": f"gain per {b['per']}"} for b in p.get("prices") or []]
        budget_price = next((b["shadow_price"] for b in p.get("prices") or []
                             if b["rule"].startswith("budget")), None)
        if budget_price is None and previous is not None and p["spend"] > previous["spend"]:
            budget_price = (gain - previous["gain"]) / (p["spend"] - previous["spend"])
        priced = p.get("solver", "lagrangian") == "lagrangian"
        point = {"budget": float(p["budget"]), "spend": float(p["spend"]), "gain": float(gain),
                 "selected": int(p["selected"]), "marginal_roi": float(budget_price or 0.0),
                 "mix": {o: int((p.get("mix") or {}).get(o, 0)) for o in spec.offer_names},
                 "binding": binding, "rules": p.get("rules") or "",
                 "binding_note": "" if binding else (
                     "none priced: loosening a rule by one unit adds nothing" if priced else
                     f"solved exactly ({p.get('solver')}): no shadow prices at this budget")}
        out.append(point)
        previous = point
    return {"currency": spec.currency, "offers": spec.offer_names, "points": out,
            "unsolved": unsolved,
            "method": f"the allocator's plan solved at {len(points)} budgets from 0 to twice "
                      "the plan's (same scores and rules); the slider moves between them"}


def nearest(points: list[dict[str, Any]], budget: float) -> dict[str, Any]:
    """The solved point whose budget is closest to ``budget``."""
    return min(points, key=lambda p: abs(p["budget"] - budget))
