"""Online features and scores equal the batch ones (`uplift features --as-of T` and
`uplift churn score`) for 200 random customer-times, to 1e-9."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from uplift.features import FeatureInputs, build_features
from uplift.service.online import feature_columns

DAYS, PER_DAY, TOL = 10, 20, 1e-9


@pytest.fixture(scope="module")
def app(make_app):
    return make_app()


@pytest.fixture(scope="module")
def service(app):
    return app.state.service


def _same_scores(online: pd.DataFrame, batch: pd.DataFrame) -> None:
    online = online.set_index("customer_id").sort_index()
    batch = batch.set_index("customer_id").sort_index()
    np.testing.assert_allclose(online["churn_risk"], batch["churn_risk"], rtol=0, atol=TOL)
    for col in ("tier", "reason_1", "reason_2", "reason_3", "exit_signal"):
        assert online[col].tolist() == batch[col].tolist(), col


def test_online_equals_batch_for_200_customer_times(service, served_bank):
    inputs = FeatureInputs.from_folder(served_bank)
    events = pd.read_parquet(served_bank / "events.parquet", columns=["ts"])
    first, last = events["ts"].min().normalize(), events["ts"].max().normalize()
    rng = np.random.default_rng(17)
    span = (last - first).days - 40
    days = sorted({str((first + pd.Timedelta(days=40 + int(d))).date())
                   for d in rng.choice(span + 2, DAYS, replace=False)})
    customers = service.customers()
    names = feature_columns() + ["open_at_as_of"]
    checked = 0
    for day in days:
        batch = build_features(inputs, day).set_index("customer_id")
        service.refresh_reference(day)
        chosen = sorted(rng.choice(customers["customer_id"].to_numpy(), PER_DAY, replace=False))
        campaign = service.store.campaign_frame()
        online = service.engine.many(
            customers[customers["customer_id"].isin(chosen)], service._events_of(chosen),
            campaign[campaign["customer_id"].isin(chosen)], service.reference)
        online = online.set_index("customer_id").loc[chosen]
        expected = batch.loc[chosen]
        for name in names:
            np.testing.assert_allclose(online[name].to_numpy(float),
                                       expected[name].to_numpy(float), rtol=TOL, atol=TOL,
                                       err_msg=f"{name} as of {day}")
        _same_scores(service.churn_scores(online.reset_index()),
                     service.churn_scores(expected.reset_index()))
        # the path the service scores with: the feature matrix straight into the model
        table = online.reset_index()
        risk, tier, reasons, signal = service._scores_of(
            table, table[feature_columns()].to_numpy(float), feature_columns())
        direct = pd.DataFrame({"customer_id": table["customer_id"], "churn_risk": risk,
                               "tier": tier, "exit_signal": signal,
                               **{f"reason_{k + 1}": reasons[:, k] for k in range(3)}})
        _same_scores(direct, service.churn_scores(expected.reset_index()))
        checked += len(chosen)
    assert checked == DAYS * PER_DAY


def test_posted_event_scores_as_batch_would(app, service, served_bank, tmp_path):
    """An event posted to the service gives the score `uplift features` + `churn score`
    give on the files with that event appended (as of the day after it)."""
    from fastapi.testclient import TestClient

    from tests.service.conftest import bearer
    from uplift.service.auth import new_token

    app_client = TestClient(app)
    token = new_token(service.store, name="parity-analyst", role="analyst")
    cid = str(service.customers()["customer_id"].iloc[7])
    ts = pd.Timestamp(service.store.last_event_ts()) + pd.Timedelta(minutes=5)
    event = {"customer_id": cid, "ts": ts.isoformat(), "event_type": "transfer_out_competitor",
             "amount": 25000.0, "channel": "online", "page": None, "topic": None}
    response = app_client.post("/v1/events", json=event, headers=bearer(token))
    assert response.status_code == 200, response.text
    scored = response.json()["customers"][0]
    folder = tmp_path / "bank"
    folder.mkdir()
    for name in ("customers", "campaign_log"):
        (folder / f"{name}.parquet").write_bytes((served_bank / f"{name}.parquet").read_bytes())
    events = pd.read_parquet(served_bank / "events.parquet")
    extra = pd.DataFrame([{**event, "ts": ts}]).astype(
        {"ts": events["ts"].dtype, "customer_id": events["customer_id"].dtype})
    pd.concat([events, extra[events.columns]], ignore_index=True).to_parquet(
        folder / "events.parquet", index=False)
    day = str((ts.normalize() + pd.Timedelta(days=1)).date())
    assert scored["as_of"] == day
    batch = build_features(FeatureInputs.from_folder(folder), day)
    expected = service.churn_scores(batch[batch["customer_id"] == cid]).iloc[0]
    assert abs(scored["churn_risk"] - expected["churn_risk"]) <= TOL
    assert scored["tier"] == expected["tier"]
    assert scored["reasons"] == [r for r in (expected["reason_1"], expected["reason_2"],
                                             expected["reason_3"]) if r]

