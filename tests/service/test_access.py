"""Every route x every role gets exactly the documented 2xx or 403; no token gets 401;
every request is in the audit log with who, what and the outcome."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from tests.service.conftest import bearer, last_day, some_customer
from uplift.errors import InputError
from uplift.service import auth
from uplift.service.jobs import WHATIF_FILE


def _stub_plan(budget, campaign, sources, out: Path) -> dict:
    """A quick stand-in for the planner: the access rules do not depend on the plan."""
    out.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"customer_id": ["10000001", "10000002"], "holdout": [0, 1],
                  "offer": ["fee_waiver", "fee_waiver"], "expected_gain": [5.0, 4.0]}
                 ).to_csv(out / "plan.csv", index=False)
    (out / WHATIF_FILE).write_text(json.dumps({"customers": 2, "points": [
        {"budget": 0.0, "spend": 0.0, "expected_gain": 0.0, "selected": 0, "rules": "",
         "mix": {"fee_waiver": 0}, "prices": []},
        {"budget": budget, "spend": 4.0, "expected_gain": 9.0, "selected": 2, "rules": "",
         "mix": {"fee_waiver": 2}, "prices": []}]}))
    return {"budget": budget}


@pytest.fixture(scope="module")
def setup(make_app):
    app = make_app()
    app.state.jobs.runner = _stub_plan
    client = TestClient(app)
    tokens = {role: auth.new_token(app.state.store, name=f"{role}-1", role=role)
              for role in auth.ROLES}
    tokens["planner-2"] = auth.new_token(app.state.store, name="planner-2", role="planner")
    return app, client, tokens


def _done_plan(app, client, tokens, *, approved: bool) -> int:
    from uplift.service.scoring import wait_for

    plan = client.post("/v1/plans", json={"budget": 1000}, headers=bearer(tokens["planner"]))
    assert plan.status_code == 202
    plan_id = plan.json()["id"]
    assert wait_for(lambda: app.state.jobs.get(plan_id)["status"] == "done", 20)
    if approved:
        assert app.state.jobs.approve(plan_id, "approver-1") == (0, "approved")
    return plan_id


def _call(app, client, tokens, method: str, route: str, role: str, counter: list[int]):
    headers = bearer(tokens[role]) if role else {}
    counter[0] += 1
    cid = some_customer(app)
    if route == "/v1/events":
        ts = (last_day(app) + pd.Timedelta(seconds=counter[0])).isoformat()
        return client.post(route, headers=headers, json={
            "event_id": f"access-{counter[0]}", "customer_id": cid, "ts": ts,
            "event_type": "login", "amount": 0, "channel": "app"})
    if route == "/v1/plans" and method == "POST":
        return client.post(route, headers=headers, json={"budget": 1000})
    body = None
    if route in ("/v1/campaigns", "/v1/campaigns/validate"):
        body = app.state.service.spec.model_dump(mode="json", exclude_none=True)
    elif route == "/v1/tiers" and method == "POST":
        body = {"thresholds": {"red": 0.3, "amber": 0.1}}
    elif route.endswith(("/approve", "/reject")):
        body = {"comment": "checked"}
    elif route == "/v1/results":
        body = {"csv": "arm,churned\n" + "control,1\ncontrol,0\nfee_waiver,0\nfee_waiver,0\n"
                * 5}
    path = route.replace("{customer_id}", cid).replace("{version}", "1").replace(
        "{other}", "1")
    if "{plan_id}" in route or route == "/v1/scenarios" and method == "POST":
        plan_id = _done_plan(app, client, tokens, approved=route.endswith("/export"))
        path = path.replace("{plan_id}", str(plan_id))
        if route == "/v1/scenarios":
            body = {"name": f"s{counter[0]}", "plan_id": plan_id, "budget": 3.0}
    return client.request(method, path, headers=headers, json=body)


ROUTES = sorted(auth.PERMISSIONS)


def test_every_route_is_in_the_matrix(setup):
    app, _, _ = setup
    declared = {(m, r.path) for r in app.routes for m in getattr(r, "methods", ())
                if r.path not in ("/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc")
                and m != "HEAD"}
    assert declared == set(auth.PERMISSIONS) | set(auth.PUBLIC)


@pytest.mark.parametrize(("method", "route"), ROUTES)
def test_route_by_role(setup, method, route):
    app, client, tokens = setup
    counter = [0]
    for role in auth.ROLES:
        response = _call(app, client, tokens, method, route, role, counter)
        if role in auth.PERMISSIONS[(method, route)]:
            assert 200 <= response.status_code < 300, (role, response.text)
        else:
            assert response.status_code == 403, (role, response.text)
    no_token = _call(app, client, tokens, method, route, "", counter)
    assert no_token.status_code == 401
    forged = client.request(method, route.replace("{customer_id}", "1").replace(
        "{plan_id}", "1").replace("{version}", "1").replace("{other}", "1"),
        headers=bearer("upl_" + "x" * 43))
    assert forged.status_code == 401


def test_console_cookie_needs_the_console_header(setup):
    """A signed-in cookie reads, but changes nothing without the console's header (a page
    on another site cannot send it)."""
    app, _, tokens = setup
    client = TestClient(app)
    assert client.post("/v1/session", json={"token": "upl_" + "y" * 43}).status_code == 401
    assert client.post("/v1/session", json={"token": tokens["planner"]}).status_code == 200
    assert client.get("/v1/campaigns").status_code == 200
    spec = app.state.service.spec.model_dump(mode="json", exclude_none=True)
    assert client.post("/v1/campaigns", json=spec).status_code == 403
    ok = client.post("/v1/campaigns", json=spec, headers={"X-Uplift-Console": "1"})
    assert ok.status_code == 201
    client.delete("/v1/session")
    assert client.get("/v1/campaigns").status_code == 401


def test_pages_without_a_token_show_the_sign_in_form(setup):
    _, client, tokens = setup
    page = TestClient(setup[0]).get("/plans")
    assert page.status_code == 401 and 'id="login-form"' in page.text
    assert client.get("/login").status_code == 200
    assert client.get("/static/console.js").status_code == 200
    assert client.get("/static/..%2Fapi.py").status_code == 404


def test_health_needs_no_token(setup):
    _, client, _ = setup
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["ready"] is True


def test_four_eyes(setup):
    app, client, tokens = setup
    plan_id = _done_plan(app, client, tokens, approved=False)
    # the proposer (planner-1) holds no approver role; an approver who proposed is refused
    assert app.state.jobs.approve(plan_id, "planner-1")[0] == 409
    assert app.state.jobs.approve(plan_id, " Planner-1")[0] == 409      # the same person
    with pytest.raises(InputError, match="differ only in case"):
        auth.new_token(app.state.store, name="PLANNER-1", role="approver")
    ok = client.post(f"/v1/plans/{plan_id}/approve", headers=bearer(tokens["approver"]))
    assert ok.status_code == 200 and ok.json()["approved_by"] == "approver-1"
    again = client.post(f"/v1/plans/{plan_id}/approve", headers=bearer(tokens["approver"]))
    assert again.status_code == 409


def test_export_needs_approval(setup):
    app, client, tokens = setup
    plan_id = _done_plan(app, client, tokens, approved=False)
    refused = client.get(f"/v1/plans/{plan_id}/export", headers=bearer(tokens["officer"]))
    assert refused.status_code == 409
    app.state.jobs.approve(plan_id, "approver-1")
    released = client.get(f"/v1/plans/{plan_id}/export", headers=bearer(tokens["officer"]))
    assert released.status_code == 200
    assert "customer_id" in released.text.splitlines()[0].split(",")
    assert "10000001" in released.text and "10000002" not in released.text   # holdout kept out


def test_requests_are_audited(setup):
    _, client, tokens = setup
    client.get("/v1/alerts", headers=bearer(tokens["viewer"]))
    client.get("/v1/customers/1", headers=bearer(tokens["viewer"]))
    client.get("/v1/alerts")
    lines = Path(os.environ["UPLIFT_AUDIT_LOG"]).read_text().splitlines()
    entries = [json.loads(line) for line in lines[-3:]]
    assert [e["operator"] for e in entries] == ["viewer-1 (viewer)", "viewer-1 (viewer)",
                                                "anonymous"]
    assert [e["exit_code"] for e in entries] == [0, 403, 401]
    assert entries[0]["arguments"][:2] == ["GET", "/v1/alerts"]
    from uplift.security import audit

    assert audit.verify().ok


def test_request_bodies_refuse_unknown_fields_and_absurd_budgets(setup):
    app, client, tokens = setup
    planner = bearer(tokens["planner"])
    typo = client.post("/v1/plans", json={"budget": 5000, "campaign_verison": 7},
                       headers=planner)
    assert typo.status_code == 422 and "campaign_verison" in typo.text
    huge = client.post("/v1/plans", json={"budget": 1e308}, headers=planner)
    assert huge.status_code == 422 and "budget" in huge.text
    cid = some_customer(app)
    ts = (last_day(app) + pd.Timedelta(seconds=1)).isoformat()
    event = {"customer_id": cid, "ts": ts, "event_type": "login", "amount": 0}
    extra = client.post("/v1/events", json={"events": [event], "extra": 1},
                        headers=bearer(tokens["analyst"]))
    assert extra.status_code == 422 and "extra" in extra.text


def test_a_scenario_says_when_its_budget_was_moved_and_refuses_one_off_the_curve(setup):
    app, client, tokens = setup
    plan_id = _done_plan(app, client, tokens, approved=False)      # curve points 0 and 1000
    planner = bearer(tokens["planner"])
    moved = client.post("/v1/scenarios", headers=planner, json={
        "name": "moved", "plan_id": plan_id, "budget": 700.0})
    assert moved.status_code == 201
    body = moved.json()
    assert body["budget"] == 1000 and body["requested_budget"] == 700
    assert "nearest budget" in body["note"]
    exact = client.post("/v1/scenarios", headers=planner, json={
        "name": "exact", "plan_id": plan_id, "budget": 1000.0}).json()
    assert "note" not in exact
    off = client.post("/v1/scenarios", headers=planner, json={
        "name": "off", "plan_id": plan_id, "budget": 1e9})
    assert off.status_code == 422 and "outside this plan's what-if curve" in off.text
