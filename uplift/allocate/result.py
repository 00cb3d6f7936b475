"""What an allocation returns: the plan table, its summary (counts, money, the certificate,
each rule's usage and shadow price) and the budget curve."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from uplift.allocate.calllist import add_details
from uplift.allocate.exact import solve_exact
from uplift.allocate.lagrangian import Solution, solve_lagrangian
from uplift.allocate.problem import Problem, Row, minimum_problem
from uplift.campaign import CampaignSpec
from uplift.errors import InfeasibleError


@dataclass
class Allocation:
    """A plan with its certificate and the facts a planner needs."""

    plan: pd.DataFrame
    solution: Solution
    summary: dict
    excluded: dict[str, int] = field(default_factory=dict)
    curve: pd.DataFrame | None = None
    left_out: np.ndarray | None = None      # per scored customer: final exclusion, "" if selected


def plan_frame(scores: pd.DataFrame, spec: CampaignSpec, choice: np.ndarray,
                holdout: np.ndarray, prob: np.ndarray, gains: np.ndarray, costs: np.ndarray,
                lower: np.ndarray | None) -> pd.DataFrame:
    selected = np.flatnonzero(choice >= 0)
    picked = choice[selected]
    offers = np.asarray(spec.offer_names, dtype=object)
    plan = pd.DataFrame({
        "customer_id": scores["customer_id"].to_numpy()[selected],
        "offer": offers[picked],
        "holdout": holdout[selected].astype(int),
        "assignment_probability": np.round(prob[selected], 6),
        "expected_gain": np.round(gains[selected, picked], 4),
        "cost": np.round(np.where(holdout[selected], 0.0, costs[selected, picked]), 4),
    })
    if lower is not None:
        plan.insert(5, "expected_gain_low", np.round(lower[selected, picked], 4))
    for col in ("segment", "churn_risk", "tier", "reason_1", "reason_2", "reason_3"):
        if col in scores.columns:
            plan[col] = scores[col].to_numpy()[selected]
    return add_details(plan, scores, spec, selected, picked, costs)


def cheapest_cost(problem: Problem) -> float:
    """Smallest positive cost of an allowed (customer, offer) pair (currency; 0 if none)."""
    best = np.inf
    for k in range(problem.shape[1]):           # column by column: no (n, K) temporaries
        column = problem.costs[problem.allowed[:, k], k]
        column = column[column > 0]
        if len(column):
            best = min(best, float(column.min()))
    return 0.0 if not np.isfinite(best) else best


def summary_of(problem: Problem, solution: Solution, plan: pd.DataFrame, budget: float,
             spec: CampaignSpec, seconds: float) -> dict:
    """Counts and money of the plan (see :mod:`uplift.allocate.calllist` for the words).

    A rule is *binding* when it limits the plan: a positive shadow price (the Lagrangian's
    multiplier: gain per extra unit of the rule's limit) or, without prices (exact solver),
    usage at the limit (less left than the cheapest offer, or than one customer)."""
    treated = plan[plan["holdout"] == 0]
    usage = problem.usage(solution.choice)
    cheapest = cheapest_cost(problem)
    constraints = []
    for row, used in zip(problem.rows, usage, strict=True):
        # at the limit: less is left than the cheapest offer (money) or one customer (counts)
        at_limit = used >= row.bound - 1e-6 * max(1.0, abs(row.bound)) - (
            cheapest if row.use_cost else 0.5)
        price = solution.multipliers.get(row.name)
        binding = (price > 1e-9) if price is not None else at_limit
        constraints.append({
            "constraint": row.label or row.name, "used": float(row.sign * used),
            "limit": float(row.sign * row.bound), "binding": bool(binding),
            "at_limit": bool(at_limit), "shadow_price": price})
    spend = float(treated["cost"].sum())
    gain = float(treated["expected_gain"].sum())
    by_offer = treated.groupby("offer")
    return {
        "campaign": spec.name, "currency": spec.currency, "budget": float(budget),
        "customers_scored": int(problem.shape[0]),
        "selected": int(len(plan)), "treated": int(len(treated)),
        "contacted": int(len(treated)),
        "held_out": int(plan["holdout"].sum()),
        "per_offer": {o: {"treated": int(by_offer.size().get(o, 0)),
                          "spend": float(by_offer["cost"].sum().get(o, 0.0)),
                          "expected_gain": float(by_offer["expected_gain"].sum().get(o, 0.0))}
                      for o in problem.offers},
        "spend": spend, "expected_gain": gain,
        "budget_used": problem.spend(solution.choice),
        "roi": gain / spend if spend > 0 else None,
        "plan_value_before_holdout": solution.value, "bound": solution.bound,
        "gap": solution.gap, "solver": solution.solver, "solver_note": solution.note,
        "solver_seconds": solution.seconds, "seconds": seconds,
        "constraints": constraints,
    }


def scaled_rows(problem: Problem, budget: float) -> tuple[list[Row], list[str]]:
    """The problem's rules at another ``budget`` (currency): the budget row and rules given as
    a share of the budget scale with it; absolute minimum counts are kept when the cheapest way
    to meet them still fits, else dropped. Returns the rows and the labels of dropped rules."""
    rows, dropped = [], []
    for row in problem.rows:
        if row.name == "budget":
            row = replace(row, bound=float(budget), label=f"budget <= {budget:,.0f}")
        elif row.share is not None:
            bound = row.share * budget
            word = ">=" if row.minimum else "<="
            seg = row.name.split(":", 1)[-1]
            row = replace(row, bound=row.sign * bound, label=f"spend on {seg} {word} "
                          f"{bound:,.0f}")
        elif minimum_problem(row, problem.costs, budget, problem.allowed) is not None:
            dropped.append(row.label)
            continue
        rows.append(row)
    return rows, dropped


def budget_curve(problem: Problem, budget: float, *, points: int = 9,
                 low: float = 0.1, high: float = 2.0, solution: Solution | None = None,
                 factors: np.ndarray | None = None, detail: bool = False,
                 exact_up_to: int = 0) -> pd.DataFrame:
    """Best plan's gain and spend (before the holdout, like the plan's own selection) at budgets
    from ``low`` to ``high`` times ``budget`` (or at ``factors`` times it), always including
    ``budget`` itself (where ``solution``, the plan's own, is used when given, so the plan sits
    on its curve).

    Each point is solved by the Lagrangian method (the exact solver takes over where its
    repair fails), or by the exact solver when the problem has at most ``exact_up_to``
    customer-offer variables (small banks, where Lagrangian plans can fall well short). Share
    rules scale with each budget; absolute minimums that a smaller budget cannot meet are
    dropped at that point and named in the ``rules`` column (see :func:`scaled_rows`). With
    ``detail`` each point also has ``solver``, ``mix`` (customers per offer) and ``prices``
    (each binding rule: label, shadow price and whether per currency unit or per customer;
    empty where the exact solver gave the point)."""
    rows = []
    factors = np.unique(np.append(np.linspace(low, high, points) if factors is None
                                  else np.asarray(factors, float), 1.0))
    for factor in factors:
        level = float(budget * factor)
        scaled_rules, dropped = scaled_rows(problem, level)
        scaled = Problem.__new__(Problem)              # shares the (n, K) matrices
        scaled.gains, scaled.costs = problem.gains, problem.costs
        scaled.allowed, scaled.offers, scaled.rows = problem.allowed, problem.offers, \
            scaled_rules
        note = "; ".join(f"dropped {d}" for d in dropped)
        try:
            if solution is not None and factor == 1.0:
                sol = solution
            else:
                small = problem.gains.size <= exact_up_to
                try:
                    sol = solve_exact(scaled, time_limit=30.0) if small else \
                        solve_lagrangian(scaled, tol=1e-3, time_limit=30.0)
                except InfeasibleError:
                    if small:
                        raise
                    sol = solve_exact(scaled, time_limit=30.0)
        except InfeasibleError as exc:
            rows.append({"budget": level, "spend": np.nan, "expected_gain": np.nan,
                         "bound": np.nan, "selected": 0,
                         "rules": "; ".join(filter(None, [note, f"infeasible: {exc}"])),
                         **({"mix": {}, "prices": []} if detail else {})})
            continue
        point = {"budget": level, "spend": scaled.spend(sol.choice),
                 "expected_gain": sol.value, "bound": sol.bound,
                 "selected": int((sol.choice >= 0).sum()), "rules": note}
        if detail:
            counts = np.bincount(sol.choice[sol.choice >= 0], minlength=len(problem.offers))
            point["solver"] = sol.solver
            point["mix"] = {o: int(c) for o, c in zip(problem.offers, counts, strict=True)}
            point["prices"] = [
                {"rule": r.label or r.name, "shadow_price": float(sol.multipliers[r.name]),
                 "per": "currency unit" if r.use_cost else "customer"}
                for r in scaled_rules if sol.multipliers.get(r.name, 0.0) > 1e-9]
        rows.append(point)
    curve = pd.DataFrame(rows)
    curve["marginal_roi"] = curve["expected_gain"].diff() / curve["spend"].diff()
    return curve
