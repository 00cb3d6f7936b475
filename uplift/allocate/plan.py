"""From a scores table and a campaign spec to a plan: rules, solver, holdout, summary, curve.

The scores table has one row per customer: ``customer_id``, ``gain_<offer>`` (expected gain,
currency, already net of the offer's cost) and ``cost_<offer>`` (currency) for every offer of
the campaign, and optionally ``gain_lo_<offer>`` (a lower confidence bound), ``segment``,
``marketing_consent``, ``do_not_contact`` and the columns eligibility expressions use.

The steps live in their own modules: the absolute rules (:mod:`uplift.allocate.rules`), the
solvers (:mod:`.exact`, :mod:`.lagrangian`, chosen by :func:`solve`), the randomised holdout
(:mod:`uplift.allocate.holdout`) and the plan table, summary and budget curve
(:mod:`uplift.allocate.result`). Spend and gain in the summary count treated customers only,
so the budget is never exceeded.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from uplift.allocate.calllist import blocked_reasons, exclusion_steps, left_out
from uplift.allocate.exact import solve_exact
from uplift.allocate.holdout import draw_holdout, strata_codes
from uplift.allocate.lagrangian import Solution, solve_lagrangian
from uplift.allocate.problem import Problem, build_rows
from uplift.allocate.result import Allocation, budget_curve, plan_frame, summary_of
from uplift.allocate.rules import allowed_matrix, check_budget, excluded_customers
from uplift.campaign import CampaignSpec
from uplift.errors import InfeasibleError, InputError, SchemaError
from uplift.ids import canonical_ids, fractional_ids
from uplift.schema import MAX_ABS_VALUE, number_problems, rows_text

EXACT_MAX_VARIABLES = 40_000
#: a detailed budget curve (many budgets) is solved exactly up to this many variables
CURVE_EXACT_MAX_VARIABLES = 8_000


def _matrix(scores: pd.DataFrame, prefix: str, offers: list[str], source: str) -> np.ndarray:
    cols = [f"{prefix}{o}" for o in offers]
    missing = [c for c in cols if c not in scores.columns]
    if missing:
        raise SchemaError(source, [f"missing column(s) {', '.join(missing)}; the campaign's "
                                   f"offers are {', '.join(offers)}"])
    values = np.empty((len(scores), len(cols)), order="F")   # column by column: no copies
    for j, col in enumerate(cols):
        series = scores[col]
        if not pd.api.types.is_numeric_dtype(series):
            series = pd.to_numeric(series, errors="coerce")
        values[:, j] = series.to_numpy(dtype=float)
    check_matrix(values, cols, source)
    return values


def check_matrix(values: np.ndarray, cols: list[str], source: str) -> None:
    """Refuse missing, text, infinite or implausibly large gains and costs (with rows)."""
    low, high = float(values.min(initial=0.0)), float(values.max(initial=0.0))
    if np.isfinite(low) and np.isfinite(high) and max(-low, high) <= MAX_ABS_VALUE:
        return                                   # the common case: two reductions, no copies
    bad = ~np.isfinite(values)
    if bad.any():
        col = cols[int(np.argmax(bad.any(axis=0)))]
        raise SchemaError(source, [f"column '{col}': missing, text or infinite values in "
                                   f"{rows_text(bad.any(axis=1))}"])
    huge = np.abs(values) > MAX_ABS_VALUE
    if huge.any():
        j = int(np.argmax(huge.any(axis=0)))
        raise SchemaError(source, number_problems(values[:, j], cols[j]))


@dataclass
class ScoreTable:
    """A scores table split into its per-offer matrices and the remaining columns."""

    frame: pd.DataFrame                      # customer_id, segment, consent, ... (no gains)
    gains: np.ndarray                        # (n, K) currency
    costs: np.ndarray                        # (n, K) currency
    lower: np.ndarray | None = None          # (n, K) gain lower bounds, when present

    @classmethod
    def from_frame(cls, scores: pd.DataFrame, offers: list[str], source: str) -> ScoreTable:
        has_lower = all(f"gain_lo_{o}" in scores.columns for o in offers)
        frame = scores[[c for c in scores.columns if not c.startswith(("gain_", "cost_"))]]
        return cls(frame, _matrix(scores, "gain_", offers, source),
                   _matrix(scores, "cost_", offers, source),
                   _matrix(scores, "gain_lo_", offers, source) if has_lower else None)


HANDOVER_GAP = 0.01


def solve(problem: Problem, solver: str = "auto", *, time_limit: float = 60.0,
          tol: float = 1e-4) -> Solution:
    """Pick the exact solver for small problems (or when asked), else the Lagrangian one.

    With ``auto``, a problem with minimum rules (quotas, minimum counts) that the Lagrangian
    method cannot repair into a feasible plan, or only with a gap above ``HANDOVER_GAP``, is
    handed over to the exact solver; the solution's ``note`` says so, and the better
    certificate is kept."""
    if solver not in ("auto", "exact", "lagrangian"):
        raise InputError(f"the solver must be auto, exact or lagrangian, not {solver!r}")
    n_vars = int(problem.allowed.sum())
    if solver == "exact" or (solver == "auto" and n_vars <= EXACT_MAX_VARIABLES):
        return solve_exact(problem, time_limit=time_limit)
    if solver == "lagrangian":
        return solve_lagrangian(problem, tol=tol, time_limit=time_limit)
    try:
        fast = solve_lagrangian(problem, tol=tol, time_limit=time_limit)
    except InfeasibleError as exc:
        exact = solve_exact(problem, time_limit=time_limit)
        exact.note = f"exact solver took over: the Lagrangian repair failed ({exc})"
        return exact
    if fast.gap <= HANDOVER_GAP or not any(r.minimum for r in problem.rows):
        return fast
    exact = solve_exact(problem, time_limit=time_limit)
    if exact.gap < fast.gap:
        exact.note = (f"exact solver took over: the Lagrangian plan's gap was "
                      f"{fast.gap:.2%}")
        return exact
    return fast


def allocate(
    scores: pd.DataFrame | ScoreTable, spec: CampaignSpec, *, budget: float | None = None,
    solver: str = "auto", confident: bool = False, contacts: pd.DataFrame | None = None,
    as_of: pd.Timestamp | None = None, seed: int = 0, time_limit: float = 60.0,
    curve_points: int = 0, do_not_contact: pd.DataFrame | None = None, source: str = "scores",
    curve_factors: np.ndarray | None = None,
) -> Allocation:
    """Assign at most one offer per customer under the campaign's rules and budget.

    ``scores``: loaded (pseudonymised when keyed) per-customer gains and costs in currency;
    ``contacts``: contact history (customer_id, contacted_at) for the spec's contact limit;
    ``do_not_contact``: the spec's do-not-contact list, loaded (needed when it names one);
    ``curve_factors``: budgets (times ``budget``) of a detailed budget curve (offer mix and
    shadow prices at each), instead of ``curve_points`` evenly spread ones."""
    budget = budget if budget is not None else spec.budget
    check_budget(budget)
    offers = spec.offer_names
    table = scores if isinstance(scores, ScoreTable) else ScoreTable.from_frame(
        scores, offers, source)
    scores, gains, costs = table.frame, table.gains, table.costs
    if "customer_id" not in scores.columns:
        raise SchemaError(source, ["missing required column 'customer_id'"])
    inexact = scores["customer_id"].isna().to_numpy() | fractional_ids(scores["customer_id"])
    if inexact.any():
        raise SchemaError(source, [f"column 'customer_id': missing ids or floats that are not "
                                   f"exact whole numbers in {rows_text(inexact)}"])
    # one customer, one row, however the id was written (123, 123.0, " 123 ")
    scores = scores.assign(customer_id=canonical_ids(scores["customer_id"]).to_numpy())
    dupes = scores["customer_id"].duplicated(keep=False)
    if dupes.any():
        raise SchemaError(source, [f"duplicate customer_id (after writing ids the same way) in "
                                   f"{rows_text(dupes)}"])
    negative = (costs < 0).any(axis=1)
    if negative.any():
        raise SchemaError(source, [f"negative costs in {rows_text(negative)}"])
    if confident and table.lower is None:
        raise SchemaError(source, ["acting on confident effects only needs gain_lo_<offer> "
                                   "columns (gain lower bounds) for every offer"])
    lower = table.lower if confident else None
    started = time.perf_counter()
    blocked, excluded = excluded_customers(scores, spec, contacts=contacts, as_of=as_of,
                                           do_not_contact=do_not_contact, source=source)
    allowed, more = allowed_matrix(scores, spec, gains, costs, blocked, lower=lower,
                                   source=source)
    excluded.update(more)
    steps = exclusion_steps(scores, spec, gains, costs, allowed, source)
    segments = {c: scores[c].astype(str).to_numpy()
                for c in {"segment", *(q.column for q in spec.segment_quotas)}
                if c in scores.columns}
    capacities = {c.offer: (c.min_count, c.max_count) for c in spec.capacities}
    rows = build_rows(offers, costs, budget=budget, capacities=capacities, segments=segments,
                      quotas=[q.model_dump() for q in spec.segment_quotas])
    problem = Problem(gains, costs, allowed, offers, rows)
    solution = solve(problem, solver, time_limit=time_limit)
    strata_cols = [c for c in spec.holdout_stratify if c in scores.columns]
    strata = strata_codes(scores, strata_cols)
    holdout, prob = draw_holdout(solution.choice, strata, spec.holdout_fraction, seed)
    plan = plan_frame(scores, spec, solution.choice, holdout, prob, gains, costs,
                       table.lower)
    reasons = left_out(solution.choice, blocked_reasons(
        scores, spec, contacts=contacts, as_of=as_of, do_not_contact=do_not_contact,
        source=source) if blocked.any()
        else np.full(len(scores), "", dtype=object), steps)
    summary = summary_of(problem, solution, plan, budget, spec, time.perf_counter() - started)
    summary["left_out"] = {k: int(v) for k, v in pd.Series(reasons[reasons != ""])
                           .value_counts().items()}
    summary["notes"] = []
    if spec.contact_limit is not None and contacts is None:
        summary["notes"].append("the spec's contact_limit was not applied: no contact history "
                                "was given")
    curve = (budget_curve(problem, budget, points=curve_points, solution=solution,
                          factors=curve_factors, detail=curve_factors is not None,
                          exact_up_to=CURVE_EXACT_MAX_VARIABLES if curve_factors is not None
                          else 0)
             if curve_points or curve_factors is not None else None)
    if curve is not None:
        summary["curve_rules"] = sorted({r for r in curve["rules"] if r})
    return Allocation(plan, solution, summary, excluded, curve, reasons)
