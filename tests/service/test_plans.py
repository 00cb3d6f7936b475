"""A real plan through the API: queued, run by the library's planner in the background,
approved by someone else, exported with raw ids by the officer."""

from __future__ import annotations

import io

import pandas as pd
from fastapi.testclient import TestClient

from tests.service.conftest import bearer
from uplift.service.auth import new_token
from uplift.service.scoring import wait_for


def test_plan_runs_is_approved_and_exported(make_app, served_bank):
    app = make_app()
    client = TestClient(app)
    store = app.state.store
    planner = bearer(new_token(store, name="pia", role="planner"))
    approver = bearer(new_token(store, name="abe", role="approver"))
    officer = bearer(new_token(store, name="olga", role="officer"))
    queued = client.post("/v1/plans", json={"budget": 3000}, headers=planner)
    assert queued.status_code == 202
    plan_id = queued.json()["id"]
    assert client.post("/v1/plans", json={"budget": -1}, headers=planner).status_code == 422
    assert wait_for(lambda: client.get(f"/v1/plans/{plan_id}", headers=planner)
                    .json()["status"] in ("done", "failed"), timeout=600, step=1)
    plan = client.get(f"/v1/plans/{plan_id}", headers=planner).json()
    assert plan["status"] == "done", plan["error"]
    assert plan["proposer"] == "pia" and 0 < plan["summary"]["spend"] <= 3000
    assert client.get(f"/v1/plans/{plan_id}/export", headers=officer).status_code == 409
    assert client.post(f"/v1/plans/{plan_id}/approve", headers=approver).status_code == 200
    released = client.get(f"/v1/plans/{plan_id}/export", headers=officer)
    assert released.status_code == 200
    calls = pd.read_csv(io.StringIO(released.text), dtype={"customer_id": str})
    bank = set(pd.read_parquet(served_bank / "customers.parquet")["customer_id"].astype(str))
    assert len(calls) > 0 and set(calls["customer_id"]) <= bank
