"""Money arithmetic in one place: an offer's expected net gain and its uncertainty, a plan's
total with its interval, and the value a customer realised (all in currency).

* net gain of offer k: ``-churn_change_k * customer_value + value_change_k - cost_k``;
* its standard error: ``sqrt((se_churn_k * customer_value)^2 + se_value_k^2)``;
* a one-sided 95% lower bound ``gain - 1.645 se`` (what ``gain_lo_<offer>`` columns hold);
* a plan's total: the sum of its gains, with a two-sided 95% interval ``+- 1.96 sqrt(sum se^2)``
  (independent per-customer errors assumed; ``se`` recovered from the lower bounds);
* realised value: ``-churned * customer_value + value_after`` (plus the churn the customer was
  expected to have anyway, when a baseline is given, so offers are credited only for change).

Imports nothing of the project: the gains (:mod:`uplift.effects.gain`), the plan's outlook
(:mod:`uplift.allocate.calllist`) and the backtest (:mod:`uplift.evaluate.backtest`) all use it.
"""

from __future__ import annotations

import numpy as np

Z_ONE_SIDED_95 = 1.645
Z_TWO_SIDED_95 = 1.96


def net_gain(churn_change: np.ndarray, customer_value: np.ndarray, value_change: np.ndarray,
             cost: np.ndarray) -> np.ndarray:
    """Expected net gain of an offer per customer (currency)."""
    return -churn_change * customer_value + value_change - cost


def gain_se(se_churn: np.ndarray, customer_value: np.ndarray,
            se_value: np.ndarray | float) -> np.ndarray:
    """Standard error of the net gain (currency), churn and value errors independent."""
    return np.sqrt((np.asarray(se_churn, float) * customer_value) ** 2 + np.square(se_value))


def lower_bound(gain: np.ndarray, se: np.ndarray, z: float = Z_ONE_SIDED_95) -> np.ndarray:
    """One-sided lower confidence bound of a gain (95% by default)."""
    return gain - z * se


def total_interval(gain, low, z: float = Z_TWO_SIDED_95) -> tuple[float, float]:
    """Two-sided interval of a sum of gains from their one-sided 95% lower bounds ``low``."""
    total = float(np.sum(gain))
    se = (np.asarray(gain, float) - np.asarray(low, float)) / Z_ONE_SIDED_95
    half = z * float(np.sqrt((se ** 2).sum()))
    return total - half, total + half


def realised_value(churned: np.ndarray, value_after: np.ndarray, customer_value: np.ndarray,
                   baseline_churn: np.ndarray | None = None) -> np.ndarray:
    """Value a customer realised over the horizon (currency)."""
    value = -churned * customer_value + value_after
    if baseline_churn is not None:
        value = value + baseline_churn * customer_value
    return value
