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
SUBSET_ABOVE = 100_000      # customers: below this the subset copy is not worth it
SUBSET_SHARE = 0.9          # use the subset when it drops at least 10% of the customers


def _buffer(problem: Problem) -> np.ndarray:
    buffer = getattr(problem, "_buffer", None)
    if buffer is None or buffer.shape != problem.shape:
        order = "F" if problem.gains.flags.f_contiguous else "C"     # match the inputs
        buffer = np.empty(problem.shape, order=order)
        problem._buffer = buffer  # type: ignore[attr-defined]
    return buffer


def _row_argmax(values: np.ndarray, carry: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Column of the maximum per row, the maximum, and ``carry``'s entry in that column (or
    None), for few columns: one vectorised pass per column, contiguous when the arrays are
    column-major (then about as fast as ``argmax(axis=1)`` alone, and the maximum and the
    carried values come without a 2-D gather)."""
    top = values[:, 0].copy()
    best = np.zeros(len(values), dtype=np.intp)
    picked = None if carry is None else carry[:, 0].copy()
    for k in range(1, values.shape[1]):
        column = values[:, k]
        better = column > top
        best[better] = k
        np.maximum(top, column, out=top)
        if picked is not None:
            np.copyto(picked, carry[:, k], where=better)
    return best, top, picked


def price(problem: Problem, lam: np.ndarray
          ) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
    """Best reduced-gain plan at ``lam``: (choice, reduced gain of the choice, dual value,
    each customer's cost of its best offer)."""
    reduced = _buffer(problem)                # reused n x K scratch array: no allocation
    full_cost = [(row, weight) for row, weight in zip(problem.rows, lam, strict=True)
                 if weight != 0 and row.use_cost and row.customers is None
                 and row.offers.all()]
    if full_cost:                             # the budget: gains - w * costs in one pass
        row, weight = full_cost[0]
        np.multiply(problem.costs, -weight * row.sign, out=reduced)
        reduced += problem.gains              # disallowed pairs stay -inf
    else:
        np.copyto(reduced, problem.gains)
    for row, weight in zip(problem.rows, lam, strict=True):
        if weight == 0 or (full_cost and row is full_cost[0][0]):
            continue
        w = weight * row.sign
        cols = np.flatnonzero(row.offers)
        if row.use_cost:
            mask = 1.0 if row.customers is None else row.customers[:, None]
            reduced[:, cols] -= w * problem.costs[:, cols] * mask
        elif row.customers is None:
            reduced[:, cols] -= w
        else:
            reduced[:, cols] -= w * row.customers[:, None]
    best, top, picked_cost = _row_argmax(reduced, problem.costs)
    choice = np.where(top > 0, best, -1)
    np.maximum(top, 0.0, out=top)
    dual = float(top.sum() + lam @ problem.bounds)
    return choice, top, dual, picked_cost


def _coef(row: Row, problem: Problem, rows: np.ndarray, offers: np.ndarray) -> np.ndarray:
    """Unsigned coefficient of ``row`` for customers ``rows`` taking ``offers``."""
    base = problem.cost_of(rows, offers) if row.use_cost else np.ones(len(rows))
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


def _covering_prefix(key: np.ndarray, weight: np.ndarray, needed: float) -> np.ndarray:
    """Positions of the shortest prefix, in stable ascending order of ``key``, whose
    ``weight`` sums to at least ``needed`` (everything when the total falls short).

    Same result as a full stable argsort, but only the smallest keys are sorted: candidates
    are the keys up to the k-th smallest (ties included), k growing until they cover."""
    n = len(key)
    k = min(n, 4096)
    while True:
        if k >= n:
            order = np.argsort(key, kind="stable")
        else:
            threshold = np.partition(key, k - 1)[k - 1]
            members = np.flatnonzero(key <= threshold)           # index order: stable
            order = members[np.argsort(key[members], kind="stable")]
        covered = np.cumsum(weight[order])
        cut = int(np.searchsorted(covered, needed)) + 1
        if cut <= len(order) or k >= n:
            return order[:cut]
        k = min(n, k * 8)


def _drop(problem: Problem, row: Row, choice: np.ndarray, merit: np.ndarray,
          protected: np.ndarray, excess: float) -> None:
    rows = np.flatnonzero((choice >= 0) & ~protected)
    coef = _coef(row, problem, rows, choice[rows])
    rows, coef = rows[coef > 0], coef[coef > 0]
    floors = [(r, m) for r, m in enumerate(problem.rows) if m.sign < 0]
    if not floors:
        choice[rows[_covering_prefix(merit[rows] / coef, coef, excess - 1e-9)]] = -1
        return
    order = np.argsort(merit[rows] / coef, kind="stable")
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


def _ranked_candidates(problem: Problem, full: tuple[int, ...]) -> tuple[np.ndarray,
                                                                        np.ndarray]:
    """Customers with a positive best gain once the offers of the ``full`` rows are blocked,
    their best offer, ordered by gain per cost (best first). Cached per set of full rows: a
    solve meets only a few such sets, and the ranking is then reused by every fill."""
    cache = problem.__dict__.setdefault("_ranked", {})
    closed = np.zeros(problem.shape[1], dtype=bool)       # offers full rows close to everyone
    for r in full:
        if problem.rows[r].customers is None:
            closed |= problem.rows[r].offers
    if closed.all():                                       # e.g. the budget is spent
        return np.empty(0, dtype=np.intp), np.empty(0, dtype=np.int32)
    if full not in cache:
        idx = problem.positive
        gains = problem.gains[idx]             # disallowed pairs hold -inf (see Problem)
        for r in full:
            row = problem.rows[r]
            blocked = row.offers[None, :] if row.customers is None else (
                row.offers[None, :] & row.customers[idx, None])
            gains = np.where(blocked, -np.inf, gains)
        best, value, _ = _row_argmax(gains)
        keep = value > 0
        idx, best, value = idx[keep], best[keep], value[keep]
        ratio = value / np.maximum(problem.cost_of(idx, best), 1e-9)
        order = np.argsort(-ratio, kind="stable")
        cache[full] = (idx[order], best[order].astype(np.int32))
    return cache[full]


def _fill(problem: Problem, choice: np.ndarray) -> np.ndarray:
    """Add unassigned customers with positive gain, best gain per cost first, while every
    row keeps its slack (greedy first fit over the next ``FILL_BATCH`` candidates a round;
    a new round when a row has become full, which blocks its offers)."""
    slack = problem.bounds - problem.usage(choice)
    for _ in range(8):
        full = tuple(r for r, row in enumerate(problem.rows)
                     if row.sign > 0 and slack[r] <= 1e-9)
        ranked, best = _ranked_candidates(problem, full)
        open_ = np.flatnonzero(choice[ranked] < 0)[:FILL_BATCH]
        if len(open_) == 0:
            break
        added, slack = _first_fit(problem, choice, ranked[open_],
                                  best[open_].astype(np.intp), slack)
        if not added:
            break
    return choice


def _first_fit(problem: Problem, choice: np.ndarray, rows: np.ndarray, offers: np.ndarray,
               slack: np.ndarray) -> tuple[bool, np.ndarray]:
    """Walk candidates in order, taking each that fits every row's remaining slack (greedy
    first fit), in vectorised steps: drop those that no longer fit, take the longest prefix
    that fits, repeat. Returns whether anyone was added and the slack left (rows with a
    minimum, ``sign < 0``, keep their slack: adding customers only loosens them, and
    :func:`repair` has met them already)."""
    limited = [(r, row) for r, row in enumerate(problem.rows) if row.sign > 0]
    slack = slack.astype(float).copy()
    coefs = np.array([_coef(row, problem, rows, offers) for _, row in limited])
    added = False
    while len(rows):
        room = np.array([slack[r] for r, _ in limited])[:, None] + 1e-9
        fits = (coefs <= room).all(axis=0)
        rows, offers, coefs = rows[fits], offers[fits], coefs[:, fits]
        if not len(rows):
            break
        used = np.cumsum(coefs, axis=1)
        limit = int((used <= room).all(axis=0).argmin()) if not (used <= room).all() \
            else len(rows)
        choice[rows[:limit]] = offers[:limit]
        for i, (r, _) in enumerate(limited):
            slack[r] -= used[i, limit - 1]
        rows, offers, coefs = rows[limit:], offers[limit:], coefs[:, limit:]
        added = True
    return added, slack


def subset(problem: Problem, keep: np.ndarray) -> Problem:
    """The same problem on the customers ``keep`` (indices), bounds unchanged."""
    def rows_of(matrix: np.ndarray) -> np.ndarray:          # keeps a column-major layout
        if matrix.flags.f_contiguous and not matrix.flags.c_contiguous:
            out = np.empty((len(keep), matrix.shape[1]), dtype=matrix.dtype, order="F")
            for k in range(matrix.shape[1]):
                np.take(matrix[:, k], keep, out=out[:, k])
            return out
        return matrix[keep]

    sub = Problem.__new__(Problem)
    sub.gains, sub.costs = rows_of(problem.gains), rows_of(problem.costs)
    sub.allowed, sub.offers = problem.allowed[keep], problem.offers
    sub.rows = [Row(r.name, r.bound, r.use_cost, r.offers,
                    None if r.customers is None else r.customers[keep], r.sign, r.label)
                for r in problem.rows]
    return sub


def solve_lagrangian(problem: Problem, *, tol: float = 1e-4, max_iter: int = 200,
                     time_limit: float = 60.0) -> Solution:
    """Feasible plan, dual bound and gap by the stabilised cutting-plane method.

    Without minimum rules, customers whose every allowed gain is <= 0 can never be chosen
    (their reduced gain is never positive) and add nothing to the dual: the method then runs
    on the other customers only, with the same plan and bound.
    """
    from ortools.linear_solver.python import model_builder as mb

    started = time.perf_counter()
    n = problem.shape[0]
    if n > SUBSET_ABOVE and all(r.sign > 0 for r in problem.rows):
        keep = problem.positive
        if len(keep) < SUBSET_SHARE * n:
            sol = solve_lagrangian(subset(problem, keep), tol=tol, max_iter=max_iter,
                                   time_limit=time_limit)
            choice = np.full(n, -1, dtype=sol.choice.dtype)
            choice[keep] = sol.choice
            sol.choice, sol.seconds = choice, time.perf_counter() - started
            return sol
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
    repaired: tuple[np.ndarray, np.ndarray] | None = None
    for iterations in range(1, max_iter + 1):
        choice, reduced, dual, picked_cost = price(problem, lam)
        subgradient = b - problem.usage(choice, picked_cost)
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
        # (repairing the same best plan again would give the same plan and gap: skipped)
        if stalled >= 2 or iterations % 10 == 0 or out_of_time or iterations == max_iter:
            if best_plan is not repaired:
                plan, merit = best_plan if best_plan is not None else (choice, reduced)
                repaired = best_plan
                try:   # a repair can fail at some multipliers and succeed at later ones
                    feasible = repair(problem, plan, merit + 1e-9 * top_gain, best_lam)
                except InfeasibleError as exc:
                    failure, feasible = exc, None
                if feasible is not None and problem.value(feasible) > best_value:
                    best_value, best_choice = problem.value(feasible), feasible
                gap = (best_bound - best_value) / max(abs(best_bound), 1e-12)
                if gap <= tol:
                    break
            if out_of_time:
                break
            stalled = 0
        lam = next_multipliers(mb, cuts, best_lam, radius, upper)
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


WARM_START_MIN_COUNT = 50       # a count limit scaled to the sample keeps at least this


def _warm_start(problem: Problem) -> np.ndarray:
    """Multipliers of the same problem on a fixed random sample (bounds scaled down).

    The sample has ``WARM_START_SAMPLE`` customers, more when a count limit (e.g. 400
    advisor visits) would otherwise scale down to a handful of slots, whose multiplier a
    small sample cannot estimate (at most a quarter of the customers)."""
    n = problem.shape[0]
    counts = [r.bound for r in problem.rows if not r.use_cost and r.sign > 0 and r.bound > 0]
    size = WARM_START_SAMPLE
    if counts:
        size = max(size, int(n * WARM_START_MIN_COUNT / min(counts)))
    size = min(size, max(WARM_START_SAMPLE, n // 4))
    rows = np.sort(np.random.default_rng(0).choice(n, size, replace=False))
    share = size / n
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


def next_multipliers(mb, cuts, center: np.ndarray, radius: np.ndarray, upper: np.ndarray
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
