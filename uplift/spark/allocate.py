"""The allocator on Spark: the Lagrangian dual priced on partitions, the plan on the driver.

For multipliers ``lam`` every customer independently takes the offer with the best reduced
gain (:func:`uplift.allocate.lagrangian.price`), so pricing runs on the partitions and only
``sum of reduced gains`` and the rules' usage (one number per rule) travel to the driver,
where the cutting-plane master (:func:`uplift.allocate.lagrangian.next_multipliers`) picks the next
``lam``. The minimum over the iterations of the dual function is an upper bound on the best
plan for the *whole* bank.

The plan itself is made on the driver by the single-machine allocator
(:func:`uplift.allocate.allocate`: the same rules, solver, holdout and call list) over the
customers that can matter: those whose best reduced gain is positive at ``SCREEN * lam``
(customers priced out even at half the multipliers). That plan is feasible for the whole bank
(everyone else gets no offer), so ``(bound - value) / bound`` is a certified gap for the whole
bank; when it exceeds ``RETRY_GAP`` the screen is widened (a quarter of the multipliers, then
every customer with a positive gain). The driver holds the candidates, never the bank.

The budget curve and the left-out list cover the candidates only: curve points above the
plan's budget may need customers the screen left out, so there they are lower bounds.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from uplift.allocate.lagrangian import next_multipliers, price
from uplift.allocate.plan import ScoreTable, allocate
from uplift.allocate.problem import Problem, Row, build_rows
from uplift.allocate.result import Allocation
from uplift.allocate.rules import allowed_matrix, excluded_customers
from uplift.campaign import CampaignSpec
from uplift.spark.scoring import plain

#: candidates are the customers with a positive reduced gain at these shares of the multipliers
SCREENS = (0.5, 0.25, 0.0)
RETRY_GAP = 1e-3
#: the dual stops after this many iterations without a relative improvement above tol / 10
STALL_LIMIT = 5
_GAIN, _COST, _MEMBER = "g__", "c__", "m__"


@dataclass
class SparkAllocation:
    """The plan over the candidates, with the whole bank's certificate."""

    allocation: Allocation
    candidate_scores: pd.DataFrame     # the scores of the customers allocated over
    bound: float                  # upper bound on the best plan for the whole bank (currency)
    customers: int                # customers priced (the whole bank)
    candidates: int               # customers the driver allocated over
    iterations: int
    seconds: float
    multipliers: dict[str, float]

    @property
    def value(self) -> float:
        return float(self.allocation.solution.value)

    @property
    def gap(self) -> float:
        """Certified relative gap against the whole bank's bound."""
        if self.bound == 0:
            return 0.0
        return max(0.0, (self.bound - self.value) / abs(self.bound))


def _rules(spec: CampaignSpec, batch: pd.DataFrame, costs: np.ndarray, budget: float) -> list[Row]:
    segments = {c: batch[c].astype(str).to_numpy()
                for c in {"segment", *(q.column for q in spec.segment_quotas)}
                if c in batch.columns}
    capacities = {c.offer: (c.min_count, c.max_count) for c in spec.capacities}
    return build_rows(spec.offer_names, costs, budget=budget, capacities=capacities,
                      segments=segments, quotas=[q.model_dump() for q in spec.segment_quotas],
                      check=False)


def _problem_columns(spec: CampaignSpec, budget: float, contacts, do_not_contact, as_of,
                     confident: bool) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    """Partition function: scores -> customer_id, allowed gains (-inf where not allowed),
    costs, and membership of every rule that covers some customers only."""
    offers = spec.offer_names

    def to_columns(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            batch = batch.reset_index(drop=True)
            with warnings.catch_warnings():        # "matches no customer" holds per batch only
                warnings.simplefilter("ignore")
                table = ScoreTable.from_frame(batch, offers, "scores")
                blocked, _ = excluded_customers(table.frame, spec, contacts=contacts,
                                                as_of=as_of, do_not_contact=do_not_contact)
                allowed, _ = allowed_matrix(table.frame, spec, table.gains, table.costs,
                                            blocked, source="scores",
                                            lower=table.lower if confident else None)
            out = {"customer_id": batch["customer_id"].astype(str).to_numpy(dtype=object)}
            for k in range(len(offers)):
                out[f"{_GAIN}{k}"] = np.where(allowed[:, k], table.gains[:, k], -np.inf)
                out[f"{_COST}{k}"] = table.costs[:, k]
            for r, row in enumerate(_rules(spec, table.frame, table.costs, budget)):
                if row.customers is not None:
                    out[f"{_MEMBER}{r}"] = row.customers
            yield pd.DataFrame(out)

    return to_columns


def _batch_problem(batch: pd.DataFrame, offers: list[str], template: list[Row]) -> Problem:
    k = len(offers)
    gains = np.column_stack([batch[f"{_GAIN}{j}"].to_numpy(float) for j in range(k)])
    costs = np.column_stack([batch[f"{_COST}{j}"].to_numpy(float) for j in range(k)])
    rows = [row if row.customers is None else
            replace(row, customers=batch[f"{_MEMBER}{r}"].to_numpy(bool))
            for r, row in enumerate(template)]
    return Problem(gains, costs, np.isfinite(gains), offers, rows)


def allocate_frame(session, scores, spec: CampaignSpec, *, budget: float, seed: int = 0,
                   confident: bool = False, curve_points: int = 9,
                   contacts: pd.DataFrame | None = None,
                   do_not_contact: pd.DataFrame | None = None, as_of: pd.Timestamp | None = None,
                   tol: float = 1e-4, max_iter: int = 100,
                   progress: Callable[[str], None] = lambda _: None) -> SparkAllocation:
    """Plan for a Spark scores table (the columns of
    :func:`uplift.pipeline.score_customers`) under ``spec`` and ``budget`` (currency): dual on
    the partitions, plan on the driver over the screened candidates (module docstring)."""
    started = time.perf_counter()
    offers = spec.offer_names
    k = len(offers)
    sample = scores.limit(64).toPandas()
    template = [replace(r, customers=None if r.customers is None else np.zeros(0, bool))
                for r in _rules(spec, sample, np.zeros((len(sample), k)), budget)]
    member_cols = [f"{_MEMBER}{r}" for r, row in enumerate(template) if row.customers is not None]
    schema = ", ".join(["customer_id string"] + [f"{_GAIN}{j} double, {_COST}{j} double"
                                                  for j in range(k)]
                       + [f"{c} boolean" for c in member_cols])
    columns = scores.mapInPandas(_problem_columns(spec, budget, contacts, do_not_contact, as_of,
                                                  confident), schema).persist()
    customers = columns.count()
    bounds = np.array([r.bound for r in template])
    m = len(template)

    def priced(lam: np.ndarray, screen: float | None = None):
        """(sum of reduced gains, usage per rule) at ``lam``; with ``screen``, the ids of the
        customers with a positive reduced gain at ``screen * lam`` instead."""
        def per_batch(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
            for batch in batches:
                problem = _batch_problem(batch, offers, template)
                if screen is None:
                    choice, top, _, picked_cost = price(problem, lam)
                    usage = problem.usage(choice, picked_cost)
                    yield pd.DataFrame([[float(top.sum()), *usage]],
                                       columns=["dual", *[f"u{r}" for r in range(m)]])
                else:
                    choice, _, _, _ = price(problem, lam * screen)
                    yield plain(pd.DataFrame({"customer_id": batch["customer_id"].to_numpy(
                        dtype=object)[choice >= 0]}))

        if screen is not None:
            return columns.mapInPandas(per_batch, "customer_id string")
        schema = ", ".join(["dual double"] + [f"u{r} double" for r in range(m)])
        parts = columns.mapInPandas(per_batch, schema).toPandas()
        return float(parts["dual"].sum()), parts[[f"u{r}" for r in range(m)]].sum().to_numpy()

    # multipliers above gain / smallest coefficient price every customer out: the box
    extremes = columns.selectExpr(
        *[f"max(CASE WHEN {_GAIN}{j} > -1e308 THEN abs({_GAIN}{j}) END)" for j in range(k)],
        *[f"min(CASE WHEN {_GAIN}{j} > -1e308 AND {_COST}{j} > 0 THEN {_COST}{j} END)"
          for j in range(k)]).collect()[0]
    scale = max([float(v) for v in extremes[:k] if v is not None] + [1.0])
    cheapest = [float(v) if v is not None else np.inf for v in extremes[k:]]
    upper = np.array([scale / max(min([c for c, on in zip(cheapest, row.offers, strict=True)
                                       if on] + [np.inf]) if row.use_cost else 1.0, 1e-6)
                      if np.isfinite(min(cheapest)) or not row.use_cost else scale
                      for row in template])
    lam, radius = np.zeros(m), upper.copy()
    cuts: list[tuple[float, np.ndarray, np.ndarray]] = []
    best_bound, best_lam, stalled, iterations = np.inf, lam.copy(), 0, 0
    from ortools.linear_solver.python import model_builder as mb

    for iterations in range(1, max_iter + 1):
        reduced_sum, usage = priced(lam)
        dual = reduced_sum + float(lam @ bounds)
        cuts.append((dual, lam.copy(), bounds - usage))
        if dual < best_bound - 1e-7 * abs(best_bound) or not np.isfinite(best_bound):
            improvement = (best_bound - dual) / max(abs(dual), 1e-12)
            best_bound, best_lam = dual, lam.copy()
            radius = np.minimum(radius * 2.0, upper)
            stalled = 0 if improvement > tol / 10 else stalled + 1
        else:
            radius, stalled = radius * 0.5, stalled + 1
        progress(f"  dual iteration {iterations}: bound {best_bound:,.0f}")
        if stalled >= STALL_LIMIT or float(np.max(radius / upper, initial=0.0)) < 1e-9:
            break
        lam = next_multipliers(mb, cuts, best_lam, radius, upper)

    result = None
    for screen in SCREENS:
        ids = priced(best_lam, screen)
        candidates = scores.join(ids, on="customer_id", how="left_semi").toPandas()
        progress(f"  plan over {len(candidates):,} of {customers:,} customers (screen "
                 f"{screen:g} x multipliers)")
        allocation = allocate(candidates, spec, budget=budget, seed=seed, contacts=contacts,
                              as_of=as_of, do_not_contact=do_not_contact, source="scores",
                              confident=confident, curve_points=curve_points)
        result = SparkAllocation(allocation, candidates, float(best_bound), customers,
                                 len(candidates), iterations, time.perf_counter() - started,
                                 {r.name: float(v) for r, v in zip(template, best_lam,
                                                                   strict=True)})
        if result.gap <= RETRY_GAP:
            break
    columns.unpersist()
    return result
