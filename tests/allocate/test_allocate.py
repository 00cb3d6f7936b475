"""Allocator: feasibility and optimality properties against the exact solver, rules, holdout."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from uplift.allocate import Problem, allocate, build_rows, solve_exact, solve_lagrangian
from uplift.allocate.holdout import draw_holdout
from uplift.campaign import CampaignSpec
from uplift.cli import run
from uplift.errors import InfeasibleError

OFFERS = ["coupon", "waiver", "visit"]


@st.composite
def instances(draw):
    n = draw(st.integers(3, 30))
    k = len(OFFERS)
    seed = draw(st.integers(0, 10_000))
    rng = np.random.default_rng(seed)
    costs = np.round(rng.uniform(0.5, 1.5, (n, k)) * np.array([2.0, 5.0, 50.0]), 2)
    gains = np.round(rng.normal(0.5, 1.0, (n, k)) * np.array([4.0, 8.0, 60.0]), 2)
    allowed = rng.random((n, k)) < draw(st.floats(0.4, 1.0))
    dnc = rng.random(n) < 0.1
    allowed &= ~dnc[:, None]
    budget = draw(st.floats(1.0, 300.0))
    cap = draw(st.integers(0, 5))
    rows = build_rows(OFFERS, costs, budget=budget, capacities={"visit": (0, cap)})
    return Problem(gains, costs, allowed, OFFERS, rows), dnc


def check_feasible(problem: Problem, choice: np.ndarray, dnc: np.ndarray) -> None:
    taken = np.flatnonzero(choice >= 0)
    assert problem.spend(choice) <= problem.rows[0].bound + 1e-6
    assert (choice[taken] < len(OFFERS)).all()                 # one offer at most, by shape
    assert problem.allowed[taken, choice[taken]].all()         # never ineligible
    assert not dnc[taken].any()                                # never do-not-contact
    assert (choice == OFFERS.index("visit")).sum() <= problem.rows[1].bound


@settings(max_examples=60, deadline=None)
@given(instances())
def test_lagrangian_plan_is_feasible_and_within_its_gap_of_the_optimum(case):
    problem, dnc = case
    exact = solve_exact(problem)
    fast = solve_lagrangian(problem)
    check_feasible(problem, exact.choice, dnc)
    check_feasible(problem, fast.choice, dnc)
    assert exact.value <= fast.bound + 1e-6 * max(1.0, abs(fast.bound))   # the bound is valid
    assert exact.value - fast.value <= fast.gap * abs(fast.bound) + 1e-6
    assert fast.value <= exact.value + 1e-6


@settings(max_examples=30, deadline=None)
@given(instances(), st.floats(1.0, 3.0))
def test_more_budget_never_lowers_the_value(case, factor):
    problem, _ = case
    richer = Problem(problem.gains, problem.costs, problem.allowed, problem.offers,
                     build_rows(OFFERS, problem.costs, budget=problem.rows[0].bound * factor,
                                capacities={"visit": (0, int(problem.rows[1].bound))}))
    assert solve_exact(richer).value >= solve_exact(problem).value - 1e-6


def test_lagrangian_matches_exact_on_a_larger_instance():
    rng = np.random.default_rng(3)
    n = 3000
    costs = np.tile([2.0, 5.0, 200.0], (n, 1)) * rng.uniform(0.8, 1.2, (n, 3))
    gains = rng.lognormal(0, 1, (n, 3)) * np.array([3, 8, 220]) - costs
    rows = build_rows(OFFERS, costs, budget=4000.0, capacities={"visit": (0, 10)})
    problem = Problem(gains, costs, np.ones((n, 3), bool), OFFERS, rows)
    fast, exact = solve_lagrangian(problem), solve_exact(problem)
    assert fast.gap <= 1e-3
    assert fast.value >= exact.value * (1 - 1e-3)


def test_minimum_count_is_met_or_reported_infeasible():
    costs = np.full((10, 3), 10.0)
    gains = np.full((10, 3), 1.0)
    rows = build_rows(OFFERS, costs, budget=100.0, capacities={"waiver": (4, None)})
    solution = solve_lagrangian(Problem(gains, costs, np.ones((10, 3), bool), OFFERS, rows))
    assert (solution.choice == 1).sum() >= 4
    with pytest.raises(InfeasibleError, match="impossible within the budget"):
        build_rows(OFFERS, costs, budget=30.0, capacities={"waiver": (4, None)})


def test_holdout_is_stratified_and_probabilities_recorded():
    choice = np.array([0] * 100 + [1] * 50 + [-1] * 10)
    strata = np.array(["a"] * 60 + ["b"] * 100)
    holdout, prob = draw_holdout(choice, strata, 0.2, seed=1)
    assert not holdout[choice < 0].any()
    for offer in (0, 1):
        for s in ("a", "b"):
            members = (choice == offer) & (strata == s)
            if members.sum():
                share = holdout[members].mean()
                assert abs(share - 0.2) <= 1 / members.sum() + 1e-9
                assert np.allclose(prob[members & holdout], share)
                assert np.allclose(prob[members & ~holdout], 1 - share)


def spec(**extra) -> CampaignSpec:
    return CampaignSpec.model_validate({
        "name": "t", "budget": 500, "holdout_fraction": 0.1,
        "offers": [{"name": o, "channel": "email", "cost": {"fixed": 1.0}} for o in OFFERS],
        **extra})


def scores_table(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    table = pd.DataFrame({"customer_id": np.arange(n), "segment": rng.choice(["x", "y"], n),
                          "marketing_consent": rng.random(n) < 0.9,
                          "do_not_contact": (rng.random(n) < 0.05).astype(int)})
    for k, o in enumerate(OFFERS):
        table[f"gain_{o}"] = rng.normal(2 + k, 3, n)
        table[f"gain_lo_{o}"] = table[f"gain_{o}"] - 2
        table[f"cost_{o}"] = [1.0, 3.0, 20.0][k]
    return table


def test_rules_are_absolute_and_plan_is_deterministic():
    table = scores_table()
    first = allocate(table, spec(), confident=True, seed=5)
    again = allocate(table, spec(), confident=True, seed=5)
    pd.testing.assert_frame_equal(first.plan, again.plan)
    # plans carry ids as canonical text (uplift.ids)
    planned = table.set_index(table["customer_id"].astype(str)).loc[first.plan["customer_id"]]
    assert planned["marketing_consent"].all()
    assert (planned["do_not_contact"] == 0).all()
    lower = np.array([planned.loc[c, f"gain_lo_{o}"] for c, o in
                      zip(first.plan["customer_id"], first.plan["planned_offer"], strict=True)])
    assert (lower > 0).all()
    assert first.summary["spend"] <= 500 + 1e-9
    assert first.summary["held_out"] > 0


def test_cli_allocate_writes_plan_and_refuses_bad_input(tmp_path, capsys):
    table = scores_table()
    table.to_csv(tmp_path / "s.csv", index=False)
    (tmp_path / "c.yaml").write_text(spec().model_dump_json())
    assert run(["allocate", "--scores", str(tmp_path / "s.csv"), "--campaign",
                str(tmp_path / "c.yaml"), "--budget", "300", "--out",
                str(tmp_path / "plan.csv")]) == 0
    assert "gap" in capsys.readouterr().out
    assert pd.read_csv(tmp_path / "plan.csv")["cost"].sum() <= 300
    bad = table.copy()
    bad.loc[7, "cost_waiver"] = -1
    bad.to_csv(tmp_path / "bad.csv", index=False)
    for args, message in (
        (["--scores", str(tmp_path / "bad.csv"), "--budget", "300"], "negative costs in row 8"),
        (["--scores", str(tmp_path / "s.csv"), "--budget", "0"], "positive amount"),
    ):
        code = run(["allocate", *args, "--campaign", str(tmp_path / "c.yaml"), "--out",
                    str(tmp_path / "p2.csv")])
        assert code == 2
        assert message in capsys.readouterr().err
        assert not (tmp_path / "p2.csv").exists()


def test_quotas_contact_limit_and_minimum_roi_are_respected():
    table = scores_table(600, seed=2)
    contacts = pd.DataFrame({"customer_id": [0, 0, 1, 2],
                             "contacted_at": ["2025-12-01", "2025-12-10", "2025-12-05",
                                              "2024-01-01"]})
    rules = spec(segment_quotas=[{"segment": "x", "max_budget_share": 0.3}],
                 contact_limit={"max_contacts": 2, "window_days": 90},
                 min_roi={"visit": 0.5})
    result = allocate(table, rules, budget=400, contacts=contacts,
                      as_of=pd.Timestamp("2026-01-01"), seed=1)
    plan = result.plan.merge(table.astype({"customer_id": str}), on="customer_id",
                             suffixes=("", "_s"))
    treated = plan[plan["holdout"] == 0]
    assert treated.loc[treated["segment"] == "x", "cost"].sum() <= 0.3 * 400 + 1e-6
    assert "0" not in set(result.plan["customer_id"])                 # two recent contacts
    assert result.excluded["contact limit reached"] >= 1
    visits = plan[plan["planned_offer"] == "visit"]
    assert (visits["gain_visit"] / visits["cost_visit"] >= 0.5).all()


def test_a_contact_limit_without_history_is_reported_not_silently_skipped():
    rules = spec(contact_limit={"max_contacts": 2, "window_days": 90})
    result = allocate(scores_table(200), rules, budget=100, seed=0)
    assert any("contact_limit was not applied" in n for n in result.summary["notes"])
    assert "contact limit reached" not in result.excluded
    history = pd.DataFrame({"customer_id": [1], "contacted_at": ["2025-12-01"]})
    limited = allocate(scores_table(200), rules, budget=100, seed=0, contacts=history,
                       as_of=pd.Timestamp("2026-01-01"))
    assert limited.summary["notes"] == []


def test_strata_codes_number_value_combinations_in_sorted_order():
    from uplift.allocate.holdout import strata_codes

    frame = pd.DataFrame({"segment": ["b", "a", "b", None, "a"], "band": [2, 1, 1, 1, 1]})
    codes = strata_codes(frame, ["segment", "band"])
    # (a,1) (a,1) -> 0; (b,1) -> 1; (b,2) -> 2; missing segment -> its own stratum, last
    assert codes.tolist() == [2, 0, 1, 3, 0]
    assert strata_codes(frame, []).tolist() == [0] * 5
