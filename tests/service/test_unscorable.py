"""A customer whose data the model cannot take (features beyond its bounds) is reported in
the response and never blocks the others, the metrics or the next start."""

from __future__ import annotations

import pandas as pd
from fastapi.testclient import TestClient

from tests.service.conftest import bearer
from uplift.service.auth import new_token


def test_one_customer_beyond_the_bounds_does_not_block_the_rest(make_app):
    app = make_app()
    store = app.state.store
    token = new_token(store, name="bounds-analyst", role="analyst")
    client = TestClient(app)
    ids = sorted(app.state.service.customers()["customer_id"].astype(str))
    huge, fine = ids[3], ids[4]
    ts = pd.Timestamp(store.last_event_ts()) + pd.Timedelta(minutes=1)
    batch = [{"event_id": f"big-{k}", "customer_id": huge, "ts": ts.isoformat(),
              "event_type": "deposit", "amount": 6e14} for k in range(2)]
    batch.append({"event_id": "ok-1", "customer_id": fine, "ts": ts.isoformat(),
                  "event_type": "login", "amount": 0, "channel": "app"})
    response = client.post("/v1/events", json=batch, headers=bearer(token))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["stored"] == 3
    assert [c["customer_id"] for c in body["customers"]] == [fine]
    assert [u["customer_id"] for u in body["unscored"]] == [huge]
    assert "beyond" in body["unscored"][0]["error"]
    again = client.post("/v1/events", headers=bearer(token), json={
        "event_id": "big-late", "customer_id": huge, "ts": ts.isoformat(),
        "event_type": "login", "amount": 0, "channel": "app"})
    assert again.status_code == 200 and again.json()["unscored"][0]["customer_id"] == huge
    metrics = client.get("/metrics", headers=bearer(token)).text
    assert 'outcome="unscored"' in metrics
    app.state.service.stop()
    restarted = make_app(db=store.url)              # the start re-scores and goes on
    assert restarted.state.ready
