"""Saved tier thresholds are what the service scores with: from the next event on, and after
a restart on the same store."""

from __future__ import annotations

import pandas as pd
from fastapi.testclient import TestClient

from tests.service.conftest import bearer, make_app, served_bank, served_models  # noqa: F401
from uplift.service.auth import new_token


def _post(client, token, cid, ts, key):
    event = {"event_id": key, "customer_id": cid, "ts": ts.isoformat(), "event_type": "login",
             "amount": 0, "channel": "app"}
    response = client.post("/v1/events", json=event, headers=bearer(token))
    assert response.status_code == 200, response.text
    return response.json()["customers"][0]


def test_saved_thresholds_score_the_next_event_and_survive_a_restart(make_app):  # noqa: F811
    app = make_app()
    store = app.state.store
    planner = new_token(store, name="tiers-planner", role="planner")
    analyst = new_token(store, name="tiers-analyst", role="analyst")
    client = TestClient(app)
    with store.engine.connect() as connection:
        cid = connection.exec_driver_sql(
            "SELECT customer_id FROM scores WHERE tier = 'green' ORDER BY customer_id LIMIT 1"
        ).scalar()
    ts = pd.Timestamp(store.last_event_ts()) + pd.Timedelta(minutes=1)
    before = _post(client, analyst, cid, ts, "tiers-1")
    assert before["tier"] == "green"
    # every customer at or above a risk of 0.000001 is red now
    saved = client.post("/v1/tiers", json={"thresholds": {"red": 1e-6, "amber": 5e-7}},
                        headers=bearer(planner))
    assert saved.status_code == 201, saved.text
    after = _post(client, analyst, cid, ts + pd.Timedelta(minutes=1), "tiers-2")
    assert after["tier"] == "red"
    assert abs(after["churn_risk"] - before["churn_risk"]) < 0.05   # same customer, one login

    # a bad version is refused and changes nothing
    refused = client.post("/v1/tiers", json={"thresholds": {"red": 1.5}},
                          headers=bearer(planner))
    assert refused.status_code == 422
    assert app.state.service.models.churn.tiers_ == {"red": 1e-6, "amber": 5e-7}

    app.state.service.stop()
    restarted = make_app(db=store.url)
    assert restarted.state.service.models.churn.tiers_ == {"red": 1e-6, "amber": 5e-7}
    again = _post(TestClient(restarted), analyst, cid, ts + pd.Timedelta(minutes=2), "tiers-3")
    assert again["tier"] == "red"


def test_a_version_must_keep_the_tiers_and_their_order(make_app):  # noqa: F811
    app = make_app()
    planner = new_token(app.state.store, name="order-planner", role="planner")
    client = TestClient(app)
    before = dict(app.state.service.models.churn.tiers_)
    for bad, field in (({"red": 0.05, "amber": 0.2}, "red"),          # red below amber
                       ({"red": 0.3}, "amber"),                       # a tier missing
                       ({"red": 0.3, "amber": 0.1, "purple": 0.5}, "purple"),
                       ({"red": 0.3, "amber": 0.3}, "thresholds"),
                       ({"red": 1.2, "amber": 0.1}, "red")):
        response = client.post("/v1/tiers", json={"thresholds": bad}, headers=bearer(planner))
        assert response.status_code == 422, bad
        assert field in {e["loc"] for e in response.json()["detail"]}, response.text
    assert app.state.service.models.churn.tiers_ == before
