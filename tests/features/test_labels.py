"""Churn labels: window arithmetic, population, drain rule, agreement with the simulator."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from uplift.cli import run
from uplift.errors import InputError
from uplift.features import FeatureInputs
from uplift.features.labels import build_labels
from uplift.simulate import read_truth, true_churn_probability

from .test_features import write_bank

CUSTOMERS = [
    (1, "a", "2020-01-01", 1000.0),   # closes inside the window
    (2, "a", "2020-01-01", 1000.0),   # closes before the as-of date: not in the population
    (3, "a", "2020-01-01", 5000.0),   # drains its balance inside the window
    (4, "a", "2020-01-01", 1000.0),   # stays
    (5, "a", "2020-01-01", 1000.0),   # closes inside the gap: left out
    (6, "a", "2025-07-01", 1000.0),   # opens after the as-of date: not in the population
]
EVENTS = [
    (1, "2025-06-20 10:00", "account_close", 0.0, "branch", None, None),
    (2, "2025-05-10 10:00", "account_close", 0.0, "branch", None, None),
    (3, "2025-06-10 10:00", "transfer_out_competitor", 4800.0, "app", None, None),
    (4, "2025-07-20 10:00", "login", 0.0, "app", None, None),
    (5, "2025-06-03 10:00", "account_close", 0.0, "branch", None, None),
]


@pytest.fixture()
def bank(tmp_path):
    return FeatureInputs.from_folder(write_bank(tmp_path / "bank", EVENTS, CUSTOMERS))


def test_window_and_population(bank):
    labels = build_labels(bank, "2025-06-01", horizon_days=30, gap_days=7)
    assert labels.set_index("customer_id")["churned"].to_dict() == {"1": 1, "3": 0, "4": 0}


def test_drain_rule_is_optional(bank):
    labels = build_labels(bank, "2025-06-01", horizon_days=30, gap_days=7, drain_share=0.1)
    by_id = labels.set_index(labels["customer_id"].astype(int))
    assert by_id.loc[3, "churned"] == 1 and by_id.loc[3, "churn_reason"] == "drained"
    assert by_id.loc[1, "churn_reason"] == "closed"


def test_window_beyond_the_data_is_refused(bank, tmp_path, capsys):
    with pytest.raises(InputError, match="not covered"):
        build_labels(bank, "2025-07-01", horizon_days=30)
    out = tmp_path / "labels.csv"
    assert run(["labels", "--data", str(bank.customers.parent), "--as-of", "2025-07-01",
                "--out", str(out)]) == 2
    assert not out.exists()


def test_label_rate_matches_the_simulators_true_probability(small_bank_dir):
    labels = build_labels(FeatureInputs.from_folder(small_bank_dir), "2025-11-01",
                          horizon_days=30, gap_days=0)
    truth = read_truth(small_bank_dir / "truth.parquet").set_index("customer_id")
    p = pd.Series(true_churn_probability(truth.reset_index(), "2025-11-01"), index=truth.index)
    expected = p.loc[labels["customer_id"]].mean()
    se = np.sqrt(expected * (1 - expected) / len(labels))
    assert abs(labels["churned"].mean() - expected) < 4 * se + 0.005
