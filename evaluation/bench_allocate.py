"""Benchmark the allocator on random heterogeneous instances.

4 offers with costs around 2 / 5 / 20 / 200, one budget and one capacity on the expensive offer.

* solver time and certified gap of the Lagrangian solver at 1,000,000 customers;
* `uplift allocate` end to end from Parquet at 8,000,000 customers (wall time, peak memory);
* `uplift allocate` end to end from Parquet with the demo campaign's rules
  (`campaigns/retention_demo.yaml`: marketing consent, eligibility by balance, 400 advisor
  visits, a 10% holdout stratified by segment) at 1,000,000 and 8,000,000 customers, budget
  8 per customer;
* side by side: the naive rule "rank by gain per cost, take until the budget is spent" and
  CP-SAT on the full integer model with a time limit at 10,000 and 100,000 customers.

Usage: python evaluation/bench_allocate.py [--sizes 1000000] [--end-to-end 8000000]
                                           [--cpsat 10000,100000] [--cpsat-seconds 30]
                                           [--with-rules 1000000,8000000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from uplift.allocate import Problem, build_rows, solve_lagrangian

OFFERS = ["o2", "o5", "o20", "o200"]
BASE_COST = np.array([2.0, 5.0, 20.0, 200.0])
CHILD = """
import json, resource, sys, time
from uplift.cli import run
started = time.perf_counter()
code = run(sys.argv[1:])
print(json.dumps({"code": code, "seconds": time.perf_counter() - started,
                  "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2}))
"""


def instance(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, float, int]:
    rng = np.random.default_rng(seed)
    costs = BASE_COST * rng.uniform(0.8, 1.2, (n, 4))
    value = rng.lognormal(0.0, 1.0, (n, 4)) * BASE_COST * np.array([1.6, 1.5, 1.4, 1.3])
    gains = value * rng.uniform(0.2, 1.6, (n, 1)) - costs
    budget = 8.0 * n            # currency: enough for about a quarter of the customers
    capacity = n // 200         # advisor-like slots on the expensive offer
    return gains, costs, budget, capacity


def problem_for(n: int) -> Problem:
    gains, costs, budget, capacity = instance(n)
    rows = build_rows(OFFERS, costs, budget=budget, capacities={"o200": (0, capacity)})
    return Problem(gains, costs, np.ones(gains.shape, dtype=bool), OFFERS, rows)


def naive(problem: Problem) -> float:
    """Best gain-per-cost offer per customer, customers by that ratio, fill the budget."""
    ratio = np.where(problem.gains > 0, problem.gains / problem.costs, -np.inf)
    best = ratio.argmax(axis=1)
    score = ratio[np.arange(len(best)), best]
    order = np.argsort(-score, kind="stable")
    order = order[np.isfinite(score[order])]
    cost = problem.costs[order, best[order]]
    budget, cap = problem.rows[0].bound, problem.rows[1].bound
    spent, used, value = 0.0, 0, 0.0
    for i, c in zip(order, cost, strict=True):
        if spent + c > budget:
            continue
        if best[i] == 3:
            if used >= cap:
                continue
            used += 1
        spent += c
        value += problem.gains[i, best[i]]
    return value


def cpsat(problem: Problem, seconds: float) -> tuple[float, float, str]:
    from ortools.sat.python import cp_model

    n, k = problem.shape
    model = cp_model.CpModel()
    x = [[model.new_bool_var("") for _ in range(k)] for _ in range(n)]
    for i in range(n):
        model.add_at_most_one(x[i])
    scale = 100
    flat = [v for row in x for v in row]
    model.add(cp_model.LinearExpr.weighted_sum(
        flat, np.round(problem.costs * scale).astype(int).ravel().tolist())
        <= int(problem.rows[0].bound * scale))
    model.add(sum(x[i][3] for i in range(n)) <= int(problem.rows[1].bound))
    model.maximize(cp_model.LinearExpr.weighted_sum(
        flat, np.round(problem.gains * scale).astype(int).ravel().tolist()))
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = seconds
    solver.parameters.num_workers = 2
    status = solver.solve(model)
    return (solver.objective_value / scale, solver.best_objective_bound / scale,
            solver.status_name(status))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000000")
    parser.add_argument("--end-to-end", type=int, default=8_000_000)
    parser.add_argument("--cpsat", default="10000,100000")
    parser.add_argument("--cpsat-seconds", type=float, default=30.0)
    parser.add_argument("--with-rules", default="1000000,8000000",
                        help="sizes for the end-to-end run with the demo campaign's rules")
    args = parser.parse_args()
    for n in [int(s) for s in args.with_rules.split(",") if s]:
        with_rules(n)
    for n in [int(s) for s in args.sizes.split(",") if s]:
        problem = problem_for(n)
        solution = solve_lagrangian(problem)
        greedy = naive(problem)
        print(f"n={n:,}: lagrangian {solution.seconds:.2f} s solver time, {solution.iterations} "
              f"iterations, value {solution.value:,.0f}, bound {solution.bound:,.0f}, gap "
              f"{solution.gap:.4%}; naive ratio rule {greedy:,.0f} (leaves "
              f"{1 - greedy / solution.value:.1%} behind)", flush=True)
    for n in [int(s) for s in args.cpsat.split(",") if s]:
        problem = problem_for(n)
        solution = solve_lagrangian(problem)
        started = time.perf_counter()
        value, bound, status = cpsat(problem, args.cpsat_seconds)
        print(f"n={n:,}: CP-SAT ({args.cpsat_seconds:.0f} s limit, 2 workers) {status} value "
              f"{value:,.0f} bound {bound:,.0f} in {time.perf_counter() - started:.1f} s; "
              f"lagrangian {solution.value:,.0f} (gap {solution.gap:.4%}) in "
              f"{solution.seconds:.2f} s; naive {naive(problem):,.0f}", flush=True)
    if args.end_to_end:
        n = args.end_to_end
        with tempfile.TemporaryDirectory() as tmp_name:
            tmp = Path(tmp_name)
            gains, costs, budget, capacity = instance(n)
            table = pd.DataFrame({"customer_id": np.arange(n, dtype=np.int64)})
            for k, o in enumerate(OFFERS):
                table[f"gain_{o}"] = gains[:, k]
                table[f"cost_{o}"] = costs[:, k]
            table.to_parquet(tmp / "scores.parquet")
            del table, gains, costs
            spec = {"name": "bench", "budget": budget, "holdout_fraction": 0.0,
                    "require_consent": False, "holdout_stratify": [],
                    "offers": [{"name": o, "channel": "email", "cost": {"fixed": 1.0}}
                               for o in OFFERS],
                    "capacities": [{"offer": "o200", "max_count": capacity}]}
            (tmp / "spec.yaml").write_text(json.dumps(spec))
            result = subprocess.run(
                [sys.executable, "-c", CHILD, "allocate", "--scores", str(tmp / "scores.parquet"),
                 "--campaign", str(tmp / "spec.yaml"), "--out", str(tmp / "plan.parquet"),
                 "--json"], capture_output=True, text=True, check=True)
            lines = result.stdout.strip().splitlines()
            summary, stats = json.loads(lines[-2]), json.loads(lines[-1])
            print(f"n={n:,} end to end `uplift allocate` from Parquet: {stats['seconds']:.1f} s "
                  f"wall, peak {stats['peak_gb']:.2f} GB, solver {summary['solver']} "
                  f"{summary['solver_seconds']:.1f} s, gap {summary['gap']:.4%}, treated "
                  f"{summary['treated']:,}")


DEMO_SPEC = Path(__file__).resolve().parents[1] / "campaigns" / "retention_demo.yaml"
DEMO_OFFERS = ["health_report", "rate_coupon", "fee_waiver", "advisor_visit"]  # cheap -> dear
SEGMENTS = ["private_banking", "mass_affluent", "young_retail", "silent"]


def with_rules(n: int) -> None:
    """`uplift allocate` from Parquet on the demo campaign's rules, in a child process."""
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        gains, costs, budget, _ = instance(n)
        rng = np.random.default_rng(1)
        table = pd.DataFrame({
            "customer_id": np.arange(n, dtype=np.int64),
            "segment": pd.Series(rng.choice(SEGMENTS, n, p=[0.05, 0.25, 0.4, 0.3])),
            "aum": np.round(rng.lognormal(9.0, 1.5, n), 2),
            "marketing_consent": rng.random(n) < 0.9})
        for k, o in enumerate(DEMO_OFFERS):
            table[f"gain_{o}"] = gains[:, k]
            table[f"cost_{o}"] = costs[:, k]
        table.to_parquet(tmp / "scores.parquet")
        del table, gains, costs
        started = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-c", CHILD, "allocate", "--scores", str(tmp / "scores.parquet"),
             "--campaign", str(DEMO_SPEC), "--budget", str(budget), "--out",
             str(tmp / "plan.parquet"), "--json"], capture_output=True, text=True, check=True)
        wall = time.perf_counter() - started
        lines = result.stdout.strip().splitlines()
        summary, stats = json.loads(lines[-2]), json.loads(lines[-1])
        print(f"n={n:,} `uplift allocate` from Parquet with the demo rules (consent, "
              f"eligibility, 400 advisor visits, 10% holdout by segment): {wall:.1f} s wall "
              f"(process start to exit; {stats['seconds']:.1f} s in the command), peak "
              f"{stats['peak_gb']:.2f} GB, "
              f"solver {summary['solver']} {summary['solver_seconds']:.1f} s, gap "
              f"{summary['gap']:.4%}, treated {summary['treated']:,}, held out "
              f"{summary['held_out']:,}", flush=True)


if __name__ == "__main__":
    main()
