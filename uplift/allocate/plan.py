"""From a scores table and a campaign spec to a plan: rules, solver, holdout, summary, curve.

The scores table has one row per customer: ``customer_id``, ``gain_<offer>`` (expected gain,
currency, already net of the offer's cost) and ``cost_<offer>`` (currency) for every offer of
the campaign, and optionally ``gain_lo_<offer>`` (a lower confidence bound), ``segment``,
``marketing_consent``, ``do_not_contact`` and the columns eligibility expressions use.

Rules applied before any optimisation (a customer excluded here can never be in a plan):
do-not-contact (spec file and/or column), marketing consent (when the spec requires it),
contact limit (with a contact history), eligibility expressions, minimum ROI per offer
(gain / cost), and with ``confident=True`` a positive lower bound ``gain_lo``.

Holdout: after optimisation, a fraction ``holdout_fraction`` of the selected customers of each
stratum (``holdout_stratify`` columns x offer) is drawn at random (seeded) and not contacted.
Every plan row records its assignment probability: ``1 - h`` for a treated customer and ``h``
for a held-out one, where ``h`` is the stratum's realised holdout share. Spend and gain in the
summary count treated customers only, so the budget is never exceeded.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from uplift.allocate.calllist import (
    add_details,
    blocked_reasons,
    exclusion_steps,
    left_out,
)
from uplift.allocate.exact import solve_exact
from uplift.allocate.lagrangian import Solution, solve_lagrangian
from uplift.allocate.problem import Problem, Row, build_rows, minimum_problem
from uplift.campaign import CampaignSpec, eligible
from uplift.errors import InfeasibleError, InputError, SchemaError
from uplift.ids import canonical_ids, check_join, fractional_ids
from uplift.schema import (
    DO_NOT_CONTACT,
    MAX_ABS_VALUE,
    DataWarning,
    number_problems,
    parse_date_column,
    parse_flags,
    rows_text,
    validate,
)
from uplift.security.pseudonym import is_pseudonym, protect_ids

EXACT_MAX_VARIABLES = 40_000
CONSENT_MISSING = ("missing column 'marketing_consent': the campaign requires consent "
                   "(set require_consent: false in the spec only if consent is handled "
                   "upstream)")


@dataclass
class Allocation:
    """A plan with its certificate and the facts a planner needs."""

    plan: pd.DataFrame
    solution: Solution
    summary: dict
    excluded: dict[str, int] = field(default_factory=dict)
    curve: pd.DataFrame | None = None
    left_out: np.ndarray | None = None      # per scored customer: final exclusion, "" if selected


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


def check_budget(budget: float | None) -> None:
    """A budget is a positive, finite amount below 10^15 (currency); anything else is refused."""
    if budget is None or not budget > 0:
        raise InputError(f"the budget must be a positive amount (got {budget}); give the "
                         "campaign's budget")
    if not np.isfinite(budget) or budget > MAX_ABS_VALUE:
        raise InputError(f"the budget {budget:g} is not a plausible amount (at most "
                         f"{MAX_ABS_VALUE:g}); give the campaign's real budget")


def excluded_customers(
    scores: pd.DataFrame, spec: CampaignSpec, *, contacts: pd.DataFrame | None = None,
    as_of: pd.Timestamp | None = None, do_not_contact: pd.DataFrame | None = None,
    source: str = "scores",
) -> tuple[np.ndarray, dict[str, int]]:
    """Customers no offer may reach (absolute rules) and the count per reason.
    ``do_not_contact``: the spec's list, loaded (required when the spec names one)."""
    n = len(scores)
    blocked = np.zeros(n, dtype=bool)
    reasons: dict[str, int] = {}
    customer_ids = canonical_ids(scores["customer_id"])
    if spec.do_not_contact is not None:
        if do_not_contact is None:
            raise InputError(f"campaign {spec.name!r} names the do-not-contact list "
                             f"{spec.do_not_contact}, but it was not loaded; pass it (read by "
                             "uplift.tasks.allocation.read_do_not_contact)")
        dnc_source = do_not_contact.attrs.get("source", str(spec.do_not_contact))
        if "customer_id" not in do_not_contact.columns:
            raise SchemaError(dnc_source, ["missing required column 'customer_id'"])
        listed = same_ids(do_not_contact, scores, dnc_source, source)
        if len(listed):
            # every entry must name a customer: unmatched entries are counted in a warning,
            # a list of which none match (padding, type, pseudonyms) is refused
            check_join(listed, customer_ids, what="do-not-contact entries",
                       source=dnc_source, reference=source, min_share=0.0,
                       refuse_diagnosed=True)
        hit = customer_ids.isin(listed).to_numpy(dtype=bool, na_value=False)
        reasons["do-not-contact list"] = int(hit.sum())
        blocked |= hit
    if "do_not_contact" in scores.columns:
        # the bank convention: a marker (X, J, 1, yes...) flags, blank means not flagged
        hit = parse_flags(scores["do_not_contact"], "do_not_contact", source, blank=False)
        reasons["do-not-contact flag"] = int((hit & ~blocked).sum())
        blocked |= hit
    if spec.require_consent:
        if "marketing_consent" not in scores.columns:
            raise SchemaError(source, [CONSENT_MISSING])
        consent = parse_flags(scores["marketing_consent"], "marketing_consent", source,
                              blank=False)
        reasons["no marketing consent"] = int((~consent & ~blocked).sum())
        blocked |= ~consent
    if spec.contact_limit is not None and contacts is not None:
        if as_of is None:
            raise InputError("a contact history needs the planning date (as_of) to apply the "
                             "contact limit")
        history = getattr(contacts, "attrs", {}).get("source", "contact history")
        when = parse_date_column(contacts["contacted_at"], "contacted_at", history)
        contacted_ids = same_ids(contacts, scores, history, source)
        if len(contacted_ids):
            check_join(contacted_ids, customer_ids, what="contact-history rows",
                       source=history, reference=source, min_share=0.0,
                       refuse_diagnosed=True)
        # a contact of unknown date counts as recent: an unknown never allows a contact
        in_window = (when.isna() | ((when < as_of) & (when >= as_of - pd.Timedelta(
            days=spec.contact_limit.window_days)))).to_numpy(dtype=bool, na_value=True)
        window = pd.DataFrame({"customer_id": contacted_ids.to_numpy()[in_window]})
        counts = window.groupby("customer_id").size()
        recent = customer_ids.map(counts).fillna(0).to_numpy(dtype=float)
        hit = recent >= spec.contact_limit.max_contacts
        reasons["contact limit reached"] = int((hit & ~blocked).sum())
        blocked |= hit
    return blocked, reasons


def allowed_matrix(
    scores: pd.DataFrame, spec: CampaignSpec, gains: np.ndarray, costs: np.ndarray,
    blocked: np.ndarray, *, lower: np.ndarray | None, source: str,
) -> tuple[np.ndarray, dict[str, int]]:
    """Which (customer, offer) pairs may be chosen; ``lower`` = gain lower bounds when only
    confident effects may be acted on."""
    allowed = np.ones(gains.shape, dtype=bool) & ~blocked[:, None]
    counts: dict[str, int] = {}
    for k, offer in enumerate(spec.offers):
        ok = eligible(scores, offer, source=source)
        if offer.eligibility is not None and len(ok) and not ok.any():
            warnings.warn(f"{source}: offer {offer.name!r}: eligibility {offer.eligibility!r} "
                          "matches no customer (a typo in a value?); the offer is not used",
                          DataWarning, stacklevel=2)
        counts[f"not eligible for {offer.name}"] = int((~ok & ~blocked).sum())
        allowed[:, k] &= ok
        floor = spec.min_roi.get(offer.name)
        if floor is not None:
            roi = np.divide(gains[:, k], costs[:, k], out=np.full(len(gains), np.inf),
                            where=costs[:, k] > 0)
            low = roi < floor
            counts[f"ROI below {floor} for {offer.name}"] = int((low & allowed[:, k]).sum())
            allowed[:, k] &= ~low
    if lower is not None:
        unsure = (lower <= 0) & allowed & (gains > 0)
        counts["effect not confident (gain lower bound <= 0)"] = int(unsure.any(axis=1).sum())
        allowed &= lower > 0
    return allowed, counts


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


def strata_codes(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """One integer per row naming its stratum (the combination of ``columns``' values; a
    missing value is a stratum of its own), numbered in sorted order of those values; zeros
    without columns. Vectorised (per-column factorize and integer arithmetic): no row-wise
    string joins, which are slow on pandas 3's Arrow-backed strings."""
    key = np.zeros(len(frame), dtype=np.int64)
    size = 1
    for col in columns:
        codes, levels = pd.factorize(frame[col], sort=True, use_na_sentinel=False)
        if size * max(len(levels), 1) >= 2**62:          # renumber before it could overflow
            key = pd.factorize(key, sort=True)[0].astype(np.int64)
            size = int(key.max()) + 1
        key = key * max(len(levels), 1) + codes
        size *= max(len(levels), 1)
    return pd.factorize(key, sort=True)[0].astype(np.int64) if columns else key


def draw_holdout(choice: np.ndarray, strata: np.ndarray, fraction: float, seed: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Holdout flags and assignment probabilities for the selected customers.

    ``strata``: stratum per row (integers from :func:`strata_codes`, or any labels, numbered
    in sorted order); the holdout is drawn within
    each (stratum, offer) group, groups in order of stratum then offer, members in row order.
    """
    holdout = np.zeros(len(choice), dtype=bool)
    prob = np.ones(len(choice))
    if fraction <= 0:
        return holdout, prob
    rng = np.random.default_rng(seed)
    selected = np.flatnonzero(choice >= 0)
    width = int(choice.max()) + 1 if len(selected) else 1
    strata = np.asarray(strata)
    if strata.dtype.kind not in "iu":
        strata = pd.factorize(strata, sort=True)[0]
    keys = strata.astype(np.int64)[selected] * width + choice[selected]
    order = np.argsort(keys, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(keys[order]) != 0])
    for members in np.split(selected[order], starts[1:]):
        if not len(members):
            continue
        k = int(np.floor(fraction * len(members) + rng.random()))   # unbiased rounding
        held = rng.choice(members, size=min(k, len(members)), replace=False)
        holdout[held] = True
        share = len(held) / len(members)
        prob[members] = 1 - share
        prob[held] = share
    return holdout, prob


def allocate(
    scores: pd.DataFrame | ScoreTable, spec: CampaignSpec, *, budget: float | None = None,
    solver: str = "auto", confident: bool = False, contacts: pd.DataFrame | None = None,
    as_of: pd.Timestamp | None = None, seed: int = 0, time_limit: float = 60.0,
    curve_points: int = 0, do_not_contact: pd.DataFrame | None = None, source: str = "scores",
) -> Allocation:
    """Assign at most one offer per customer under the campaign's rules and budget.

    ``scores``: loaded (pseudonymised when keyed) per-customer gains and costs in currency;
    ``contacts``: contact history (customer_id, contacted_at) for the spec's contact limit;
    ``do_not_contact``: the spec's do-not-contact list, loaded (needed when it names one)."""
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
    plan = _plan_frame(scores, spec, solution.choice, holdout, prob, gains, costs,
                       table.lower)
    reasons = left_out(solution.choice, blocked_reasons(
        scores, spec, contacts=contacts, as_of=as_of, do_not_contact=do_not_contact,
        source=source) if blocked.any()
        else np.full(len(scores), "", dtype=object), steps)
    summary = _summary(problem, solution, plan, budget, spec, time.perf_counter() - started)
    summary["left_out"] = {k: int(v) for k, v in pd.Series(reasons[reasons != ""])
                           .value_counts().items()}
    summary["notes"] = []
    if spec.contact_limit is not None and contacts is None:
        summary["notes"].append("the spec's contact_limit was not applied: no contact history "
                                "was given")
    curve = (budget_curve(problem, budget, points=curve_points, solution=solution)
             if curve_points else None)
    if curve is not None:
        summary["curve_rules"] = sorted({r for r in curve["rules"] if r})
    return Allocation(plan, solution, summary, excluded, curve, reasons)


def _plan_frame(scores: pd.DataFrame, spec: CampaignSpec, choice: np.ndarray,
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


def _cheapest_cost(problem: Problem) -> float:
    """Smallest positive cost of an allowed (customer, offer) pair (currency; 0 if none)."""
    best = np.inf
    for k in range(problem.shape[1]):           # column by column: no (n, K) temporaries
        column = problem.costs[problem.allowed[:, k], k]
        column = column[column > 0]
        if len(column):
            best = min(best, float(column.min()))
    return 0.0 if not np.isfinite(best) else best


def _summary(problem: Problem, solution: Solution, plan: pd.DataFrame, budget: float,
             spec: CampaignSpec, seconds: float) -> dict:
    """Counts and money of the plan (see :mod:`uplift.allocate.calllist` for the words).

    A rule is *binding* when it limits the plan: a positive shadow price (the Lagrangian's
    multiplier: gain per extra unit of the rule's limit) or, without prices (exact solver),
    usage at the limit (less left than the cheapest offer, or than one customer)."""
    treated = plan[plan["holdout"] == 0]
    usage = problem.usage(solution.choice)
    cheapest = _cheapest_cost(problem)
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
                 low: float = 0.1, high: float = 2.0, solution: Solution | None = None
                 ) -> pd.DataFrame:
    """Best plan's gain and spend (before the holdout, like the plan's own selection) at budgets
    from ``low`` to ``high`` times ``budget``, always including ``budget`` itself (where
    ``solution``, the plan's own, is used when given, so the plan sits on its curve).

    Each point is solved by the Lagrangian method (the exact solver takes over where its
    repair fails). Share rules scale with each budget; absolute minimums that a smaller budget
    cannot meet are dropped at that point and named in the ``rules`` column (see
    :func:`scaled_rows`)."""
    rows = []
    factors = np.unique(np.append(np.linspace(low, high, points), 1.0))
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
                try:
                    sol = solve_lagrangian(scaled, tol=1e-3, time_limit=30.0)
                except InfeasibleError:
                    sol = solve_exact(scaled, time_limit=30.0)
        except InfeasibleError as exc:
            rows.append({"budget": level, "spend": np.nan, "expected_gain": np.nan,
                         "bound": np.nan, "selected": 0,
                         "rules": "; ".join(filter(None, [note, f"infeasible: {exc}"]))})
            continue
        rows.append({"budget": level, "spend": scaled.spend(sol.choice),
                     "expected_gain": sol.value, "bound": sol.bound,
                     "selected": int((sol.choice >= 0).sum()), "rules": note})
    curve = pd.DataFrame(rows)
    curve["marginal_roi"] = curve["expected_gain"].diff() / curve["spend"].diff()
    return curve


def same_ids(listed: pd.DataFrame, scores: pd.DataFrame, list_source: str,
             scores_source: str) -> pd.Series:
    """The ``customer_id`` of a side table (do-not-contact list, contact history) as canonical
    text (:mod:`uplift.ids`) in the same id space as ``scores``: pseudonymised with the
    configured key when the scores carry pseudonyms. A list that cannot be matched is an error,
    never silently ignored."""
    if not len(listed):
        return pd.Series([], dtype="string")
    ids = validate(listed[["customer_id"]], DO_NOT_CONTACT, source=list_source)
    scores_pseudo = is_pseudonym(scores["customer_id"]).all()
    ids = protect_ids(ids, source=list_source) if scores_pseudo else ids
    if scores_pseudo and not is_pseudonym(ids["customer_id"]).all():
        raise InputError(f"{list_source}: holds raw customer ids but {scores_source} carries "
                         "pseudonyms; configure the pseudonym key (UPLIFT_PSEUDONYM_KEY_FILE) "
                         "so the list can be applied")
    return ids["customer_id"].reset_index(drop=True)
