"""Offer allocation under budget, capacities and rules (OR-Tools), with a certified gap."""

from uplift.allocate.exact import solve_exact
from uplift.allocate.lagrangian import Solution, solve_lagrangian
from uplift.allocate.plan import Allocation, allocate, budget_curve
from uplift.allocate.problem import Problem, Row, build_rows

__all__ = ["Allocation", "Problem", "Row", "Solution", "allocate", "budget_curve",
           "build_rows", "solve_exact", "solve_lagrangian"]
