"""What the bank should expect from a plan (``outlook``), backtest-scaled."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from uplift.allocate.calllist import outlook
from uplift.report.console import expectation_lines


def contacted(n: int = 4) -> pd.DataFrame:
    return pd.DataFrame({"holdout": [0] * n, "expected_gain": [100.0] * n,
                         "cost": [10.0] * n, "retained_value": [80.0] * n,
                         "new_business_margin": [30.0] * n, "churn_change": [-0.2] * n,
                         "churn_change_se": [0.05] * n})


@settings(max_examples=50, deadline=None)
@given(st.floats(-5, 3), st.floats(0, 3), st.floats(0, 3))
def test_the_kept_customers_lie_inside_their_interval(share, below, above):
    """Whatever the backtest's share and interval, the forecast customers kept lies inside
    its own interval (before, a negative share gave 'about -226 (0 .. 26)')."""
    out = outlook(contacted(), (share, share - below, share + above))
    assert out["forecast_kept_low"] <= out["forecast_kept"] + 1e-9
    assert out["forecast_kept"] <= out["forecast_kept_high"] + 1e-9
    assert out["forecast_low"] <= out["forecast"] + 1e-9 <= out["forecast_high"] + 2e-9


@pytest.mark.parametrize("share", [-3.59, 0.0])
def test_a_plan_rule_that_lost_on_the_past_campaign_is_flagged(share):
    out = outlook(contacted(), (share, share - 1.0, share + 1.0))
    assert "warning" in out and f"{share:.2f}" in out["warning"]
    summary = {"currency": "EUR"}
    lines = expectation_lines(summary, out)
    assert lines[1].startswith("warning: replayed on the past campaign")


def test_a_plan_rule_that_gained_has_no_warning():
    out = outlook(contacted(), (0.8, 0.5, 1.1))
    assert "warning" not in out
    assert not any(line.startswith("warning") for line in
                   expectation_lines({"currency": "EUR"}, out))
