"""The real Berka PKDD'99 bank log through the importer and the feature SQL."""

from __future__ import annotations

import pandas as pd
import pytest

from uplift.cli import run

from ..conftest import SHARED_DATA

BERKA = SHARED_DATA / "berka"
pytestmark = pytest.mark.skipif(not (BERKA / "account.asc").exists(),
                                reason=f"Berka data not available at {BERKA}")


def test_berka_features_as_of_1994_01_01(tmp_path):
    data = tmp_path / "berka"
    assert run(["--quiet", "import", "berka", "--src", str(BERKA), "--out", str(data)]) == 0
    customers = pd.read_parquet(data / "customers.parquet")
    events = pd.read_parquet(data / "events.parquet")
    assert len(customers) == 4500 and len(events) == 49_102
    out = tmp_path / "features.parquet"
    assert run(["--quiet", "features", "--data", str(data), "--as-of", "1994-01-01", "--out",
                str(out)]) == 0
    features = pd.read_parquet(out)
    assert len(features) == 4500 and not features.isna().any().any()
    active = features[features["txn_days_since_last"] < 730]
    assert len(active) > 1000
    assert active["txn_deposit_count_365d"].mean() > 1
    assert (features["beh_logins_365d"] == 0).all()       # Berka has no digital log
    assert set(features["rfm_recency_score"]) <= {1, 2, 3, 4, 5}
