"""Segment quotas and minimum counts: met by the Lagrangian solver (or the exact solver taking
over), at several budgets, and in the budget curve (share rules scale, unreachable absolute
minimums are dropped and named)."""

from __future__ import annotations

from unittest import mock

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from uplift.allocate import Problem, allocate, build_rows, solve_exact, solve_lagrangian
from uplift.allocate import plan as plan_module
from uplift.allocate.plan import solve
from uplift.campaign import CampaignSpec
from uplift.errors import InfeasibleError, InputError

OFFERS = ["coupon", "waiver", "visit", "report"]


def bank(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    """Scores shaped like the demo bank: a cheap low-value offer, a costly high-value one, and
    a large segment ('young') whose gains are small, so a quota on it costs the plan."""
    rng = np.random.default_rng(seed)
    segment = rng.choice(["rich", "mass", "young"], n, p=[0.1, 0.4, 0.5])
    aum = np.where(segment == "rich", 500_000, np.where(segment == "mass", 60_000, 3_000))
    aum = aum * rng.lognormal(0, 0.5, n)
    scale = np.where(segment == "young", 0.2, 1.0)
    table = pd.DataFrame({"customer_id": np.arange(n), "segment": segment, "aum": aum,
                          "marketing_consent": True})
    costs = {"coupon": 2 + 0.000625 * aum, "waiver": np.full(n, 24.0),
             "visit": np.full(n, 180.0), "report": np.full(n, 0.5)}
    means = {"coupon": 30, "waiver": 40, "visit": 400, "report": 6}
    for o in OFFERS:
        table[f"gain_{o}"] = rng.normal(means[o], means[o], n) * scale - costs[o]
        table[f"cost_{o}"] = costs[o]
    return table


def spec(**extra) -> CampaignSpec:
    return CampaignSpec.model_validate({
        "name": "q", "holdout_fraction": 0.1, "require_consent": False,
        "offers": [{"name": o, "channel": "email", "cost": {"fixed": 1.0},
                    **({"eligibility": "aum >= 100000"} if o == "visit" else {})}
                   for o in OFFERS],
        "capacities": [{"offer": "visit", "max_count": 40}], **extra})


def young_spend(result) -> float:
    plan = result.plan
    # the quota applies to the selection (contacted + held out), like the budget
    cost = plan["offer_cost"].where(plan["segment"] == "young", 0.0)
    return float(cost.sum())


def problem_for(table: pd.DataFrame, budget: float, quota: dict) -> Problem:
    gains = table[[f"gain_{o}" for o in OFFERS]].to_numpy()
    costs = table[[f"cost_{o}" for o in OFFERS]].to_numpy()
    allowed = np.ones(gains.shape, dtype=bool)
    allowed[:, 2] = table["aum"].to_numpy() >= 100_000
    rows = build_rows(OFFERS, costs, budget=budget, capacities={"visit": (0, 40)},
                      segments=table["segment"].to_numpy(), quotas=[quota])
    return Problem(gains, costs, allowed, OFFERS, rows)


@pytest.mark.parametrize("budget", [300.0, 1_000.0, 3_000.0])
def test_lagrangian_meets_a_minimum_budget_share_with_a_valid_certificate(budget, monkeypatch):
    quota = {"segment": "young", "min_budget_share": 0.3}
    exact = solve_exact(problem_for(bank(), budget, quota), time_limit=5)
    problem = problem_for(bank(), budget, quota)
    fast = solve_lagrangian(problem)
    assert not problem.violations(fast.choice)
    young = bank()["segment"].to_numpy() == "young"
    picked = np.flatnonzero((fast.choice >= 0) & young)
    assert problem.costs[picked, fast.choice[picked]].sum() >= 0.3 * budget - 1e-6
    assert fast.value <= exact.bound + 1e-6           # a feasible plan: never above the optimum
    assert exact.value <= fast.bound + 1e-6           # the dual bound is valid
    # above 1% the exact solver takes over (here the table is large enough for the
    # Lagrangian method only because the threshold is lowered)
    monkeypatch.setattr(plan_module, "EXACT_MAX_VARIABLES", 0)
    chosen = solve(problem, "auto", time_limit=30)    # 10 s sufficed on a quiet machine
    assert not problem.violations(chosen.choice)
    assert chosen.gap < plan_module.HANDOVER_GAP
    assert (chosen.solver == "lagrangian") == (fast.gap <= plan_module.HANDOVER_GAP)


@pytest.mark.parametrize("budget", [500.0, 2_000.0, 8_000.0])
def test_quotas_hold_at_several_budgets_and_in_the_curve(budget):
    rules = spec(segment_quotas=[{"segment": "young", "min_budget_share": 0.2},
                                 {"segment": "mass", "min_count": 300}])
    result = allocate(bank(), rules, budget=budget, seed=1, curve_points=4, solver="lagrangian")
    assert young_spend(result) >= 0.2 * budget - 1e-6
    assert (result.plan["segment"] == "mass").sum() >= 300
    assert result.plan["offer_cost"].sum() <= budget + 1e-6
    curve = result.curve
    assert np.isclose(curve["budget"], budget).any()            # the plan's own budget is a point
    assert curve["expected_gain"].notna().all()
    here = curve[np.isclose(curve["budget"], budget)].iloc[0]   # the dot is on the curve
    assert here["expected_gain"] == pytest.approx(result.summary["plan_value_before_holdout"])
    assert here["spend"] == pytest.approx(result.summary["budget_used"])
    # 300 'mass' customers cost at least 150 (the 0.5 report): dropped below that only
    for _, point in curve.iterrows():
        dropped = "dropped mass selected >= 300" in point["rules"]
        assert dropped == (point["budget"] < 150)
    assert (curve["spend"] <= curve["budget"] + 1e-6).all()
    assert result.summary["curve_rules"] == sorted({r for r in curve["rules"] if r})


def test_curve_drops_an_unreachable_minimum_instead_of_failing():
    rules = spec(segment_quotas=[{"segment": "young", "min_count": 1000}])
    result = allocate(bank(), rules, budget=3_000, seed=0, curve_points=4, solver="lagrangian")
    small = result.curve[result.curve["budget"] < 500]           # 1,000 x 0.5 = 500 needed
    assert len(small) and small["rules"].str.contains("dropped young selected >= 1,000").all()
    assert small["expected_gain"].notna().all()
    assert (result.plan["segment"] == "young").sum() >= 1000


def test_binding_flags_agree_with_shadow_prices():
    rules = spec(segment_quotas=[{"segment": "young", "min_budget_share": 0.3}])
    result = allocate(bank(), rules, budget=1_000, seed=0, solver="lagrangian")
    for c in result.summary["constraints"]:
        assert c["binding"] == (c["shadow_price"] > 1e-9)
    budget_row = result.summary["constraints"][0]
    assert budget_row["binding"] and budget_row["used"] <= 1_000 + 1e-6


def test_a_used_up_rule_with_price_0_reads_at_its_limit():
    """The Lagrangian can settle a used-up budget's price at 0 within its tolerance; the
    console and the report then say 'at its limit', never 'not binding'."""
    from uplift.report.console import plan_lines
    from uplift.report.plan import rules_table

    result = allocate(bank(), spec(), budget=1_000, seed=0, solver="lagrangian")
    summary = dict(result.summary)
    summary["constraints"] = [dict(c) for c in summary["constraints"]]
    budget_row = summary["constraints"][0]
    assert budget_row["at_limit"]
    budget_row.update(binding=False, shadow_price=0.0)
    line = next(x for x in plan_lines(summary, {}) if "rule budget" in x)
    assert "(at its limit;" in line and "not binding" not in line
    assert ">at its limit<" in rules_table(summary["constraints"], "EUR")


def test_exact_solver_takes_over_when_the_lagrangian_repair_fails(monkeypatch):
    def failing(*_, **__):
        raise InfeasibleError("the constraints cannot all be met together: test")

    monkeypatch.setattr(plan_module, "EXACT_MAX_VARIABLES", 0)
    monkeypatch.setattr(plan_module, "solve_lagrangian", failing)
    problem = problem_for(bank(200), 100.0, {"segment": "young", "min_budget_share": 0.3})
    solution = solve(problem, "auto")
    assert solution.solver == "scip"
    assert "exact solver took over" in solution.note
    assert not problem.violations(solution.choice)
    assert solution.bound >= solution.value
    with pytest.raises(InfeasibleError):
        solve(problem, "lagrangian")


@st.composite
def quota_instances(draw):
    n = draw(st.integers(6, 40))
    rng = np.random.default_rng(draw(st.integers(0, 10_000)))
    costs = np.round(rng.uniform(0.5, 1.5, (n, 4)) * np.array([2.0, 5.0, 50.0, 0.5]), 2)
    gains = np.round(rng.normal(0.5, 1.0, (n, 4)) * np.array([4.0, 8.0, 60.0, 1.0]), 2)
    allowed = rng.random((n, 4)) < 0.8
    segments = rng.choice(["a", "b"], n)
    budget = draw(st.floats(20.0, 300.0))
    quota = draw(st.sampled_from([
        {"segment": "a", "min_count": draw(st.integers(1, 5))},
        {"segment": "a", "min_budget_share": draw(st.floats(0.05, 0.5))},
        {"segment": "b", "max_budget_share": draw(st.floats(0.1, 0.9)), "min_count": 1}]))
    try:
        rows = build_rows(OFFERS, costs, budget=budget, capacities={"visit": (0, 3)},
                          segments=segments, quotas=[quota])
    except (InfeasibleError, InputError):
        return None
    return Problem(gains, costs, allowed, OFFERS, rows)


@settings(max_examples=40, deadline=None)
@given(quota_instances())
def test_minimum_rules_are_met_or_handed_over_with_a_valid_certificate(problem):
    if problem is None:
        return
    try:
        exact = solve_exact(problem, time_limit=10)
    except InfeasibleError:
        return                                   # truly infeasible: nothing to compare
    with mock.patch.object(plan_module, "EXACT_MAX_VARIABLES", 0):
        chosen = solve(problem, "auto", time_limit=30)    # 10 s sufficed on a quiet machine
    assert not problem.violations(chosen.choice)
    assert chosen.value <= exact.bound + 1e-6
    assert exact.value <= chosen.bound + 1e-6
    assert chosen.gap <= max(plan_module.HANDOVER_GAP, exact.gap) + 1e-9
