"""Scalable solver: Lagrangian dual by stabilised cutting planes (GLOP master) + repair.

For multipliers ``lam >= 0`` on the coupling rows, each customer independently takes the offer
with the best reduced gain ``gain - lam . a`` if it is positive (vectorised NumPy pricing). The
dual function ``D(lam) = sum_i max(0, max_k reduced_ik) + lam . b`` is an upper bound on the
LP relaxation, hence on the integer optimum, for *every* ``lam``. It is minimised by Kelley's
cutting-plane method with a trust region: the master ``min theta s.t. theta >= D(lam_t) +
g_t . (lam - lam_t)`` is a tiny LP solved by OR-Tools GLOP. Each pricing plan is repaired into a
feasible plan (drop the least valuable assignments from violated rows, add the best candidates
for minimum rules, then fill any slack greedily). The best feasible plan and the best bound give
the certified gap ``(bound - value) / bound``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from uplift.allocate.problem import Problem, Row
from uplift.errors import InfeasibleError


@dataclass
class Solution:
    """A feasible plan with its certificate."""

    choice: np.ndarray              # offer index per customer, -1 = none
    value: float                    # total expected gain (currency)
    bound: float                    # upper bound on the optimum (currency)
    solver: str
    seconds: float
    multipliers: dict[str, float] = field(default_factory=dict)
    iterations: int = 0
    note: str = ""                  # e.g. why the exact solver took over

    @property
    def gap(self) -> float:
        """Certified relative gap (bound - value) / |bound| (0 when the bound is 0)."""
        if self.bound == 0:
            return 0.0
        return max(0.0, (self.bound - self.value) / abs(self.bound))


FILL_BATCH = 20_000


def _buffer(problem: Problem) -> np.ndarray:
    buffer = getattr(problem, "_buffer", None)
    if buffer is None or buffer.shape != problem.shape:
        buffer = np.empty(problem.shape)
        problem._buffer = buffer  # type: ignore[attr-defined]
    return buffer


def price(problem: Problem, lam: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Best reduced-gain plan at ``lam``: (choice, reduced gain of the choice, dual value)."""
    reduced = problem.gains.copy()        # disallowed pairs already hold -inf
    for row, weight in zip(problem.rows, lam, strict=True):
        if weight == 0:
            continue
        w = weight * row.sign
        cols = np.flatnonzero(row.offers)
        if row.use_cost:
            if row.customers is None and len(cols) == problem.shape[1]:
                reduced -= np.multiply(problem.costs, w, out=_buffer(problem))
            else:
                mask = 1.0 if row.customers is None else row.customers[:, None]
                reduced[:, cols] -= w * problem.costs[:, cols] * mask
        else:
            if row.customers is None:
                reduced[:, cols] -= w
            else:
                reduced[:, cols] -= w * row.customers[:, None]
    best = reduced.argmax(axis=1)
    top = reduced[np.arange(len(best)), best]
    choice = np.where(top > 0, best, -1)
    dual = float(np.maximum(top, 0).sum() + lam @ problem.bounds)
    return choice, np.maximum(top, 0.0), dual


def _coef(row: Row, problem: Problem, rows: np.ndarray, offers: np.ndarray) -> np.ndarray:
    """Unsigned coefficient of ``row`` for customers ``rows`` taking ``offers``."""
    base = problem.costs[rows, offers] if row.use_cost else np.ones(len(rows))
    inside = row.offers[offers]
    if row.customers is not None:
        inside = inside & row.customers[rows]
    return base * inside


def repair(problem: Problem, choice: np.ndarray, merit: np.ndarray,
           lam: np.ndarray | None = None) -> np.ndarray:
    """Make ``choice`` feasible; ``merit`` ranks assignments (higher = keep first).

    Minimum rules are met first by adding the candidates with the best reduced gain per unit
    of the rule (``lam`` = the multipliers, so their cost on the other rules counts); maximum
    rules are then met by dropping the least valuable assignments, never one a minimum rule
    still needs."""
    choice = choice.copy()
    protected = np.zeros(len(choice), dtype=bool)
    lam = np.zeros(len(problem.rows)) if lam is None else lam
    for _ in range(6):
        excess = problem.excess(choice)
        if not excess:
            break
        for r in sorted(excess, key=lambda r: problem.rows[r].sign):   # minimums first
            amount = problem.excess(choice).get(r)
            if amount is None:
                continue
            row = problem.rows[r]
            if row.sign > 0:
                _drop(problem, row, choice, merit, protected, amount)
            else:
                _add(problem, r, choice, protected, amount, lam)
    still = problem.excess(choice)
    if still:
        raise InfeasibleError("the constraints cannot all be met together: "
                              + ", ".join(problem.rows[r].label for r in still))
    return _fill(problem, choice)


def _drop(problem: Problem, row: Row, choice: np.ndarray, merit: np.ndarray,
          protected: np.ndarray, excess: float) -> None:
    rows = np.flatnonzero((choice >= 0) & ~protected)
    coef = _coef(row, problem, rows, choice[rows])
    rows, coef = rows[coef > 0], coef[coef > 0]
    order = np.argsort(merit[rows] / coef, kind="stable")
    floors = [(r, m) for r, m in enumerate(problem.rows) if m.sign < 0]
    if not floors:
        covered = np.cumsum(coef[order])
        cut = int(np.searchsorted(covered, excess - 1e-9)) + 1
        choice[rows[order[:cut]]] = -1
        return
    # with minimum rules: skip assignments a minimum still needs (its slack would go negative)
    usage = problem.usage(choice)
    slack = np.array([usage[r] * -1 - (-m.bound) for r, m in floors])   # used - floor >= 0
    rows, coef = rows[order], coef[order]
    parts = np.array([_coef(m, problem, rows, choice[rows]) for _, m in floors])
    covered = 0.0
    for j in range(len(rows)):
        need = parts[:, j]
        if (need > slack + 1e-9).any():
            continue
        slack -= need
        choice[rows[j]] = -1
        covered += coef[j]
        if covered >= excess - 1e-9:
            return


def _reduced(problem: Problem, lam: np.ndarray, rows: np.ndarray, cols: np.ndarray
             ) -> np.ndarray:
    """Reduced gains ``gain - sum_r lam_r a_r`` of customers ``rows`` for offers ``cols``
    (-inf where not allowed)."""
    out = np.where(problem.allowed[np.ix_(rows, cols)], problem.gains[np.ix_(rows, cols)],
                   -np.inf)
    for row, weight in zip(problem.rows, lam, strict=True):
        if weight == 0:
            continue
        inside = row.offers[cols][None, :] & (
            True if row.customers is None else row.customers[rows, None])
        base = problem.costs[np.ix_(rows, cols)] if row.use_cost else 1.0
        out = out - weight * row.sign * base * inside
    return out


def _add(problem: Problem, r: int, choice: np.ndarray, protected: np.ndarray,
         shortfall: float, lam: np.ndarray) -> None:
    """Raise a minimum rule's usage by ``shortfall``: add customers outside the rule, or move
    customers to an offer that counts more (a costlier offer for a spending floor), taking the
    moves that lose the least reduced gain per unit of the rule first (one per customer)."""
    row = problem.rows[r]
    cols = np.flatnonzero(row.offers)
    members = np.ones(len(choice), dtype=bool) if row.customers is None else row.customers
    candidates = np.flatnonzero(members)
    reduced = _reduced(problem, lam, candidates, cols)               # (c, |cols|)
    current = choice[candidates]
    has = current >= 0
    now = np.zeros(len(candidates))
    now[has] = _coef(row, problem, candidates[has], current[has])
    now_value = np.zeros(len(candidates))
    if has.any():
        full = _reduced(problem, lam, candidates[has], np.arange(problem.shape[1]))
        now_value[has] = full[np.arange(int(has.sum())), current[has]]
    base = problem.costs[np.ix_(candidates, cols)] if row.use_cost else np.ones(
        (len(candidates), len(cols)))
    delta = base - now[:, None]                                       # extra usage per move
    value = reduced - now_value[:, None]                              # reduced gain lost/won
    usable = np.isfinite(reduced) & (delta > 1e-12)
    ratio = np.where(usable, value / np.where(usable, delta, 1.0), -np.inf)
    pick = ratio.argmax(axis=1)
    ok = np.isfinite(ratio[np.arange(len(pick)), pick])
    idx = np.flatnonzero(ok)
    pick = pick[ok]
    candidates, best = candidates[idx], cols[pick]
    delta, ratio = delta[idx, pick], ratio[idx, pick]
    order = np.argsort(-ratio, kind="stable")
    covered = np.cumsum(delta[order])
    cut = int(np.searchsorted(covered, shortfall - 1e-9)) + 1
    take = order[:cut]
    choice[candidates[take]] = best[take]
    protected[candidates[take]] = True


def _fill(problem: Problem, choice: np.ndarray) -> np.ndarray:
    """Add unassigned customers with positive gain while every row keeps its slack."""
    for _ in range(8):
        slack = problem.bounds - problem.usage(choice)
        open_ = np.flatnonzero(choice < 0)
        if len(open_) == 0:
            break
        gains = np.where(problem.allowed[open_], problem.gains[open_], -np.inf)
        for r, row in enumerate(problem.rows):   # offers a full row can no longer take
            if row.sign > 0 and slack[r] <= 1e-9:
                blocked = row.offers[None, :] if row.customers is None else (
                    row.offers[None, :] & row.customers[open_, None])
                gains = np.where(blocked, -np.inf, gains)
        best = gains.argmax(axis=1)
        value = gains[np.arange(len(best)), best]
        keep = value > 0
        open_, best, value = open_[keep], best[keep], value[keep]
        if len(open_) == 0:
            break
        cost = problem.costs[open_, best]
        ratio = -(value / np.maximum(cost, 1e-9))
        if len(ratio) > FILL_BATCH:   # only the best candidates can fit into the slack
            top = np.argpartition(ratio, FILL_BATCH)[:FILL_BATCH]
            open_, best, ratio = open_[top], best[top], ratio[top]
        order = np.argsort(ratio, kind="stable")
        open_, best = open_[order], best[order]
        limit = len(open_)
        for r, row in enumerate(problem.rows):
            if row.sign < 0:
                continue
            used = np.cumsum(_coef(row, problem, open_, best))
            limit = min(limit, int(np.searchsorted(used, slack[r] + 1e-9, side="right")))
        if limit == 0:
            # the next-best candidate does not fit: drop those that can never fit and retry
            fits = np.ones(len(open_), dtype=bool)
            for r, row in enumerate(problem.rows):
                if row.sign > 0:
                    fits &= _coef(row, problem, open_, best) <= slack[r] + 1e-9
            if not fits.any():
                break
            first = int(np.argmax(fits))
            choice[open_[first]] = best[first]
            continue
        choice[open_[:limit]] = best[:limit]
    return choice


def solve_lagrangian(problem: Problem, *, tol: float = 1e-4, max_iter: int = 200,
                     time_limit: float = 60.0) -> Solution:
    """Feasible plan, dual bound and gap by the stabilised cutting-plane method."""
    from ortools.linear_solver.python import model_builder as mb

    started = time.perf_counter()
    m = len(problem.rows)
    b = problem.bounds
    scale = max(float(np.abs(problem.gains[problem.allowed]).max(initial=0.0)), 1.0)
    top_gain = float(problem.gains[problem.allowed].max(initial=0.0))
    upper = np.array([scale / max(_min_positive(problem, r), 1e-6) for r in problem.rows])
    lam = np.zeros(m)
    radius = upper.copy()
    if problem.shape[0] > WARM_START_ABOVE:
        lam = _warm_start(problem)
        radius = np.minimum(np.maximum(0.25 * lam, 1e-3 * upper), upper)
    cuts: list[tuple[float, np.ndarray, np.ndarray]] = []
    best_bound, best_lam = np.inf, lam.copy()
    best_choice, best_value = np.full(problem.shape[0], -1), -np.inf
    failure: InfeasibleError | None = None
    iterations, stalled = 0, 0
    best_plan: tuple[np.ndarray, np.ndarray] | None = None
    for iterations in range(1, max_iter + 1):
        choice, reduced, dual = price(problem, lam)
        subgradient = b - problem.usage(choice)
        cuts.append((dual, lam.copy(), subgradient))
        improved = not np.isfinite(best_bound) or dual < best_bound - 1e-7 * abs(best_bound)
        if improved:
            best_bound, best_lam, best_plan = dual, lam.copy(), (choice, reduced)
            radius = np.minimum(radius * 2.0, upper)
            stalled = 0
        else:
            radius = radius * 0.5
            stalled += 1
        out_of_time = time.perf_counter() - started > time_limit
        # repairing is the expensive step: do it when the dual has settled (or periodically)
        if stalled >= 2 or iterations % 10 == 0 or out_of_time or iterations == max_iter:
            plan, merit = best_plan if best_plan is not None else (choice, reduced)
            try:       # a repair can fail at some multipliers and succeed at later ones
                feasible = repair(problem, plan, merit + 1e-9 * top_gain, best_lam)
            except InfeasibleError as exc:
                failure, feasible = exc, None
            if feasible is not None and problem.value(feasible) > best_value:
                best_value, best_choice = problem.value(feasible), feasible
            gap = (best_bound - best_value) / max(abs(best_bound), 1e-12)
            if gap <= tol or out_of_time:
                break
            stalled = 0
        lam = _master(mb, cuts, best_lam, radius, upper)
    if not np.isfinite(best_value):
        if problem.excess(best_choice) and failure is not None:
            raise failure
        best_value = problem.value(best_choice)
    return Solution(best_choice, best_value, float(best_bound), "lagrangian",
                    time.perf_counter() - started,
                    {r.name: float(v) for r, v in zip(problem.rows, best_lam, strict=True)},
                    iterations)


WARM_START_ABOVE = 200_000
WARM_START_SAMPLE = 50_000


def _warm_start(problem: Problem) -> np.ndarray:
    """Multipliers of the same problem on a fixed random sample (bounds scaled down)."""
    n = problem.shape[0]
    rows = np.sort(np.random.default_rng(0).choice(n, WARM_START_SAMPLE, replace=False))
    share = WARM_START_SAMPLE / n
    sample = Problem.__new__(Problem)
    sample.gains, sample.costs = problem.gains[rows], problem.costs[rows]
    sample.allowed, sample.offers = problem.allowed[rows], problem.offers
    sample.rows = [Row(r.name, r.bound * share, r.use_cost, r.offers,
                       None if r.customers is None else r.customers[rows], r.sign, r.label)
                   for r in problem.rows]
    solution = solve_lagrangian(sample, tol=1e-3, max_iter=60, time_limit=10.0)
    return np.array([solution.multipliers[r.name] for r in problem.rows])


def _min_positive(problem: Problem, row: Row) -> float:
    if not row.use_cost:
        return 1.0
    cols = np.flatnonzero(row.offers)
    costs = problem.costs[:, cols][problem.allowed[:, cols]]
    positive = costs[costs > 0]
    return float(positive.min()) if len(positive) else 1.0


def _master(mb, cuts, center: np.ndarray, radius: np.ndarray, upper: np.ndarray
            ) -> np.ndarray:
    """Next multipliers: minimise the cutting-plane model inside the trust region."""
    model = mb.Model()
    lows = np.maximum(center - radius, 0.0)
    highs = np.minimum(center + radius, upper)
    lam = [model.new_num_var(float(lo), float(hi), f"lam{r}")
           for r, (lo, hi) in enumerate(zip(lows, highs, strict=True))]
    # cuts are scaled to order 1 and theta bounded below, which keeps GLOP well conditioned
    scale = max(max(abs(value) for value, _, _ in cuts), 1.0)
    floor = min(value for value, _, _ in cuts) / scale - 1e3
    theta = model.new_num_var(float(floor), float("inf"), "theta")
    for value, point, grad in cuts:
        constant = (value - float(np.dot(grad, point))) / scale
        model.add(theta >= constant + sum(float(g / scale) * v for g, v in
                                          zip(grad, lam, strict=True)))
    model.minimize(theta)
    solver = mb.Solver("glop")
    status = solver.solve(model)
    if status not in (mb.SolveStatus.OPTIMAL, mb.SolveStatus.FEASIBLE):
        return center
    return np.array([solver.value(v) for v in lam])
