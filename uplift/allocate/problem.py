"""The allocation problem: at most one offer per customer, linear coupling constraints.

maximise   sum_i sum_k gain[i, k] * x[i, k]
subject to sum_k x[i, k] <= 1                       (one offer per customer)
           x[i, k] = 0 where not allowed[i, k]      (eligibility, do-not-contact, consent, ...)
           sum_ik a_r[i, k] x[i, k] <= b_r           (coupling rows: budget, capacities, quotas)

Every coupling row is stored as ``<=``; a ``>=`` rule (minimum count or share) is stored
negated. A row's coefficients are ``sign * base[i, k] * offers[k] * customers[i]`` with
``base`` the cost matrix (currency) or 1 (counts), so rows never materialise an n x K matrix
beyond the cost matrix itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from uplift.errors import InfeasibleError, InputError


@dataclass(frozen=True)
class Row:
    """One coupling constraint ``sum a_ik x_ik <= bound`` (after sign folding)."""

    name: str
    bound: float
    use_cost: bool
    offers: np.ndarray                      # bool (K,)
    customers: np.ndarray | None = None     # bool (n,) or None for everyone
    sign: float = 1.0                       # -1 for a ">=" rule stored negated
    label: str = ""                         # human form, e.g. "budget <= 500,000"
    share: float | None = None              # bound as a share of the budget (share rules)

    @property
    def minimum(self) -> bool:
        """True for a ``>=`` rule (a floor the plan must reach)."""
        return self.sign < 0


@dataclass
class Problem:
    """Gains and costs (n, K) in currency, the allowed mask and the coupling rows."""

    gains: np.ndarray
    costs: np.ndarray
    allowed: np.ndarray
    offers: list[str]
    rows: list[Row] = field(default_factory=list)

    def __post_init__(self) -> None:
        n, k = self.gains.shape
        if self.costs.shape != (n, k) or self.allowed.shape != (n, k):
            raise InputError("gains, costs and allowed must have the same shape")
        # checked with boolean masks (no copies of the n x K matrices)
        if (~np.isfinite(self.gains) & self.allowed).any():
            raise InputError("gains must be finite numbers for allowed offers")
        with np.errstate(invalid="ignore"):
            bad_cost = ~(np.isfinite(self.costs) & (self.costs >= 0))
        if (bad_cost & self.allowed).any():
            raise InputError("costs must be finite and >= 0")
        # disallowed pairs get -inf gain *in place* (saves an n x K copy at 8M customers):
        # they can then never win an argmax, and their gain is never summed
        self.gains = np.asarray(self.gains, dtype=float)
        if not self.gains.flags.writeable:
            self.gains = self.gains.copy()
        self.gains[~self.allowed] = -np.inf

    @cached_property
    def _flat_costs(self) -> tuple[np.ndarray, bool]:
        """Costs as one flat array (a view when the matrix is contiguous) and whether it is
        column-major; a 1-D gather is much faster than 2-D fancy indexing at millions of
        customers."""
        if self.costs.flags.f_contiguous and not self.costs.flags.c_contiguous:
            return self.costs.ravel(order="F"), True
        return np.ascontiguousarray(self.costs).ravel(), False

    def cost_of(self, rows: np.ndarray, offers: np.ndarray) -> np.ndarray:
        """``costs[rows, offers]`` (currency)."""
        flat, column_major = self._flat_costs
        n, k = self.costs.shape
        return flat[offers * n + rows] if column_major else flat[rows * k + offers]

    @cached_property
    def positive(self) -> np.ndarray:
        """Customers with at least one allowed offer of positive gain (the only ones a plan
        can use), computed once."""
        return np.flatnonzero((self.gains > 0).any(axis=1))

    @property
    def shape(self) -> tuple[int, int]:
        return self.gains.shape

    def value(self, choice: np.ndarray) -> float:
        rows = np.flatnonzero(choice >= 0)
        return float(self.gains[rows, choice[rows]].sum())

    def spend(self, choice: np.ndarray) -> float:
        rows = np.flatnonzero(choice >= 0)
        return float(self.costs[rows, choice[rows]].sum())

    @property
    def bounds(self) -> np.ndarray:
        """Right-hand side of every coupling row."""
        return np.array([r.bound for r in self.rows])

    def usage(self, choice: np.ndarray, picked_cost: np.ndarray | None = None) -> np.ndarray:
        """Left-hand side of every coupling row for a plan ``choice`` (offer index per
        customer, -1 = none), in one pass over the customers; ``picked_cost`` (each
        customer's cost of ``choice``, any value where none) saves looking the costs up."""
        taken = np.flatnonzero(choice >= 0)
        picked = choice[taken]
        spent = self.cost_of(taken, picked) if picked_cost is None else picked_cost[taken]
        k = self.shape[1]
        counts = np.bincount(picked, minlength=k).astype(float)
        spend_by_offer = np.bincount(picked, weights=spent, minlength=k)
        out = np.empty(len(self.rows))
        for r, row in enumerate(self.rows):
            if row.customers is None:
                out[r] = row.sign * (spend_by_offer if row.use_cost else counts)[row.offers].sum()
            else:
                inside = row.customers[taken] & row.offers[picked]
                out[r] = row.sign * (spent[inside].sum() if row.use_cost else inside.sum())
        return out

    def excess(self, choice: np.ndarray, tol: float = 1e-9) -> dict[int, float]:
        """Index -> amount of every coupling row the plan exceeds (beyond ``tol`` relative)."""
        over = self.usage(choice) - self.bounds
        return {r: float(e) for r, (e, row) in enumerate(zip(over, self.rows, strict=True))
                if e > tol * max(1.0, abs(row.bound))}

    def violations(self, choice: np.ndarray, tol: float = 1e-6) -> dict[str, float]:
        """Rows whose usage exceeds the bound, with the excess."""
        out = {self.rows[r].name: e for r, e in self.excess(choice, tol).items()}
        if (choice >= 0).any():
            rows = np.flatnonzero(choice >= 0)
            if not self.allowed[rows, choice[rows]].all():
                out["allowed"] = float((~self.allowed[rows, choice[rows]]).sum())
        return out


def build_rows(
    offers: list[str], costs: np.ndarray, *, budget: float,
    capacities: dict[str, tuple[int, int | None]] | None = None,
    segments: np.ndarray | dict[str, np.ndarray] | None = None,
    quotas: list[dict] | None = None, check: bool = True,
) -> list[Row]:
    """Coupling rows from the campaign's rules.

    ``check=False`` builds the rows for one batch of the customers (a partition): a quota's
    segment may be absent from it, and minimum rules are judged on the whole table only.

    ``capacities``: offer -> (min_count, max_count or None). ``quotas``: dicts with
    ``segment``, ``column`` (default ``segment``; ``segments`` then holds each customer's value
    of every such column by name), ``min_budget_share``, ``max_budget_share``, ``min_count``,
    ``max_count`` (shares of the total budget).
    """
    if not budget > 0:
        raise InputError(f"the budget must be a positive amount, got {budget}")
    k = len(offers)
    every = np.ones(k, dtype=bool)
    rows = [Row("budget", float(budget), True, every, label=f"budget <= {budget:,.0f}")]
    for offer, (low, high) in (capacities or {}).items():
        if offer not in offers:
            raise InputError(f"capacity rule names unknown offer {offer!r}")
        sel = np.array([o == offer for o in offers])
        if high is not None:
            rows.append(Row(f"max_count:{offer}", float(high), False, sel,
                            label=f"{offer} count <= {high:,}"))
        if low:
            rows.append(Row(f"min_count:{offer}", -float(low), False, sel, sign=-1.0,
                            label=f"{offer} count >= {low:,}"))
    for quota in quotas or []:
        column = quota.get("column") or "segment"
        values = segments.get(column) if isinstance(segments, dict) else (
            segments if column == "segment" else None)
        if values is None:
            raise InputError(f"segment quotas need the column {column!r} in the scores")
        seg = quota["segment"]
        members = values == seg
        if check and not members.any():
            raise InputError(f"segment quota names segment {seg!r}, which no customer has")
        if quota.get("max_budget_share", 1.0) < 1.0:
            cap = quota["max_budget_share"] * budget
            rows.append(Row(f"max_share:{seg}", cap, True, every, members,
                            label=f"spend on {seg} <= {cap:,.0f}",
                            share=quota["max_budget_share"]))
        if quota.get("min_budget_share", 0.0) > 0:
            floor = quota["min_budget_share"] * budget
            rows.append(Row(f"min_share:{seg}", -floor, True, every, members, sign=-1.0,
                            label=f"spend on {seg} >= {floor:,.0f}",
                            share=quota["min_budget_share"]))
        if quota.get("max_count") is not None:
            rows.append(Row(f"max_count_seg:{seg}", float(quota["max_count"]), False, every,
                            members, label=f"{seg} selected <= {quota['max_count']:,}"))
        if quota.get("min_count"):
            rows.append(Row(f"min_count_seg:{seg}", -float(quota["min_count"]), False, every,
                            members, sign=-1.0,
                            label=f"{seg} selected >= {quota['min_count']:,}"))
    if check:
        _check_minimums(rows, costs)
    return rows


def minimum_problem(row: Row, costs: np.ndarray, budget: float,
                    allowed: np.ndarray | None = None) -> str | None:
    """Why a minimum count rule cannot be met within ``budget`` (currency), or None.

    Counts the cheapest ``min_count`` candidates (among ``allowed`` pairs when given): a
    necessary condition, checked before any solver runs."""
    if row.sign > 0 or row.use_cost:
        return None
    needed = -row.bound
    col = np.flatnonzero(row.offers)
    pool = costs[:, col]
    if allowed is not None:
        pool = np.where(allowed[:, col], pool, np.inf)
    pool = pool.min(axis=1)
    if row.customers is not None:
        pool = pool[row.customers]
    pool = pool[np.isfinite(pool)]
    cheapest = np.sort(pool)[: int(needed)]
    if len(cheapest) < needed:
        return (f"{row.label}: impossible, only {len(pool):,} customers can take it")
    if cheapest.sum() > budget:
        return (f"{row.label}: impossible within the budget of {budget:,.0f} (the cheapest "
                f"{int(needed):,} cost {cheapest.sum():,.0f})")
    return None


def _check_minimums(rows: list[Row], costs: np.ndarray) -> None:
    """Refuse minimum rules that exceed what the budget could ever buy."""
    budget = next(r for r in rows if r.name == "budget").bound
    for row in rows:
        problem = minimum_problem(row, costs, budget)
        if problem is not None:
            raise InfeasibleError(problem)
