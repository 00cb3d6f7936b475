"""Exact solver: the integer program through OR-Tools (SCIP), built from sparse arrays."""

from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp

from uplift.allocate.lagrangian import Solution
from uplift.allocate.problem import Problem
from uplift.errors import InfeasibleError, UpliftError


def solve_exact(problem: Problem, *, time_limit: float = 60.0, backend: str = "scip",
                gap_limit: float = 1e-5) -> Solution:
    """Optimal (or best within ``time_limit``) plan with the solver's proven bound; SCIP stops
    once its proven relative gap is below ``gap_limit``."""
    from ortools.linear_solver.python import model_builder as mb

    started = time.perf_counter()
    n, k = problem.shape
    rows_i, cols_k = np.nonzero(problem.allowed)
    nvar = len(rows_i)
    if nvar == 0:
        return Solution(np.full(n, -1), 0.0, 0.0, backend, 0.0)
    one_per_customer = sp.csr_matrix((np.ones(nvar), (rows_i, np.arange(nvar))), shape=(n, nvar))
    coupling = []
    for row in problem.rows:
        base = problem.costs[rows_i, cols_k] if row.use_cost else np.ones(nvar)
        coef = row.sign * base * row.offers[cols_k]
        if row.customers is not None:
            coef = coef * row.customers[rows_i]
        coupling.append(coef)
    matrix = sp.vstack([one_per_customer, sp.csr_matrix(np.vstack(coupling))]).tocsr() \
        if coupling else one_per_customer
    upper = np.concatenate([np.ones(n), [r.bound for r in problem.rows]])
    model = mb.Model()
    model.helper.fill_model_from_sparse_data(
        np.zeros(nvar), np.ones(nvar), problem.gains[rows_i, cols_k].astype(float),
        np.full(len(upper), -np.inf), upper.astype(float), matrix)
    for j in range(nvar):
        model.helper.set_var_integrality(j, True)
    model.helper.set_maximize(True)
    solver = mb.Solver(backend)
    solver.set_time_limit_in_seconds(time_limit)
    if backend == "scip" and gap_limit > 0:
        solver.set_solver_specific_parameters(f"limits/gap = {gap_limit}")
    status = solver.solve(model)
    if status == mb.SolveStatus.INFEASIBLE:
        raise InfeasibleError("the constraints cannot all be met together (exact solver)")
    if status not in (mb.SolveStatus.OPTIMAL, mb.SolveStatus.FEASIBLE):
        raise UpliftError(f"exact solver stopped without a plan ({solver.status_string})")
    values = np.asarray(solver.values(model.get_variables()), dtype=float)
    choice = np.full(n, -1)
    taken = values > 0.5
    choice[rows_i[taken]] = cols_k[taken]
    value = problem.value(choice)
    bound = float(solver.best_objective_bound) if status != mb.SolveStatus.OPTIMAL else value
    return Solution(choice, value, max(bound, value), backend, time.perf_counter() - started,
                    iterations=0)
