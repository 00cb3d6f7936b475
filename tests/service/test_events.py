"""POST /v1/events: all or nothing, field errors, unknown customers, 413, idempotence;
escalations become alerts (filters, paging) and signed webhook deliveries that are retried
and never block ingestion; GET /v1/customers/{id} with the best offer."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from tests.service.conftest import bearer, last_day, some_customer
from uplift.service import schema as t
from uplift.service.auth import new_token
from uplift.service.scoring import wait_for

SECRET = b"test webhook secret"


class Receiver(BaseHTTPRequestHandler):
    """Fails the first request with 500, then accepts; keeps what it got."""

    got: list[tuple[dict, str]] = []
    calls = 0

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).calls += 1
        if type(self).calls == 1:
            self.send_response(500)
        else:
            type(self).got.append((json.loads(body), self.headers["X-Uplift-Signature"],
                                   body))
            self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def receiver():
    server = HTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook"
    server.shutdown()


@pytest.fixture(scope="module")
def served(make_app, receiver):
    dead = "http://127.0.0.1:9/nobody-listens"
    app = make_app(webhooks=[receiver, dead], webhook_secret=SECRET)
    client = TestClient(app)
    token = new_token(app.state.store, name="feed", role="analyst")
    return app, client, bearer(token)


def _event(app, offset_s: int, **fields) -> dict:
    ts = (last_day(app) + pd.Timedelta(seconds=offset_s)).isoformat()
    return {"customer_id": some_customer(app), "ts": ts, "event_type": "login", "amount": 0.0,
            "channel": "app", **fields}


def test_bad_batch_is_rejected_whole_with_field_errors(served):
    app, client, headers = served
    before = app.state.store.count("events")
    batch = [_event(app, 1), _event(app, 2, amount=-5), _event(app, 3, event_type="fax"),
             _event(app, 4, ts="yesterday")]
    response = client.post("/v1/events", json={"events": batch}, headers=headers)
    assert response.status_code == 422
    places = [tuple(e["loc"]) for e in response.json()["detail"]]
    assert places == [("events", 1, "amount"), ("events", 2, "event_type"),
                      ("events", 3, "ts")]
    assert app.state.store.count("events") == before


def test_unknown_customer_is_reported_not_invented(served):
    app, client, headers = served
    before = (app.state.store.count("events"), app.state.store.count("customers"))
    batch = [_event(app, 5), _event(app, 6, customer_id="99999999")]
    response = client.post("/v1/events", json=batch, headers=headers)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["events", 1, "customer_id"]
    assert "99999999" in response.json()["detail"][0]["msg"]
    assert (app.state.store.count("events"), app.state.store.count("customers")) == before


def test_oversized_body_is_413(served):
    app, client, headers = served
    big = [_event(app, 7, channel="x" * 2000) for _ in range(600)]
    response = client.post("/v1/events", content=json.dumps(big), headers={
        **headers, "Content-Type": "application/json"})
    assert response.status_code == 413


def test_not_json_is_422(served):
    _, client, headers = served
    response = client.post("/v1/events", content=b"{not json", headers=headers)
    assert response.status_code == 422


def test_retries_are_no_ops(served):
    app, client, headers = served
    before = app.state.store.count("events")
    with_id = _event(app, 8, event_id="retry-1")
    first = client.post("/v1/events", json=with_id, headers=headers).json()
    second = client.post("/v1/events", json=with_id, headers=headers).json()
    assert (first["stored"], first["duplicates"]) == (1, 0)
    assert (second["stored"], second["duplicates"]) == (0, 1)
    assert second["customers"][0]["churn_risk"] == first["customers"][0]["churn_risk"]
    assert second["customers"][0].keys() == first["customers"][0].keys()   # "open" too
    no_id = _event(app, 9, event_type="complaint", topic="fees")
    assert client.post("/v1/events", json=no_id, headers=headers).json()["stored"] == 1
    assert client.post("/v1/events", json=no_id, headers=headers).json()["duplicates"] == 1
    assert app.state.store.count("events") == before + 2


def _red_customer(app) -> str:
    with app.state.store.engine.connect() as connection:
        return connection.execute(select(t.scores.c.customer_id).where(
            t.scores.c.tier == "red").order_by(t.scores.c.customer_id)).scalars().first()


def test_escalation_alert_and_webhooks(served):
    app, client, headers = served
    cid = _red_customer(app)
    assert cid is not None
    # the customer was green at their last score: the next event re-scores them red
    with app.state.store.begin() as connection:
        connection.execute(update(t.scores).where(t.scores.c.customer_id == cid)
                           .values(tier="green"))
    response = client.post("/v1/events", json=_event(app, 10, customer_id=cid),
                           headers=headers)
    assert response.status_code == 200
    scored = response.json()["customers"][0]
    assert scored["tier"] == "red" and scored["escalated_from"] == "green"
    segment = str(app.state.service.customers().set_index("customer_id").at[cid, "segment"])
    alerts = client.get("/v1/alerts", params={"tier": "red", "segment": segment},
                        headers=headers).json()["alerts"]
    mine = [a for a in alerts if a["customer_id"] == cid]
    assert len(mine) == 1 and mine[0]["from_tier"] == "green" and mine[0]["reasons"]
    assert client.get("/v1/alerts", params={"tier": "amber", "segment": segment},
                      headers=headers).json()["alerts"] == [
        a for a in client.get("/v1/alerts", params={"segment": segment},
                              headers=headers).json()["alerts"] if a["tier"] == "amber"]
    assert client.get("/v1/alerts", params={"tier": "purple"}, headers=headers
                      ).status_code == 422
    typo = client.get("/v1/alerts", params={"segment": segment + "x", "teir": "red"},
                      headers=headers)                   # typos are errors, not "no alerts"
    assert typo.status_code == 422
    assert {tuple(e["loc"]) for e in typo.json()["detail"]} == {("query", "segment"),
                                                               ("query", "teir")}
    future = (pd.Timestamp.now(tz="UTC") + pd.Timedelta(hours=1)).isoformat()
    assert client.get("/v1/alerts", params={"since": future}, headers=headers
                      ).json()["alerts"] == []
    # delivered to the live receiver after one failure (retried), signed
    assert wait_for(lambda: len(Receiver.got) >= 1, timeout=15)
    payload, signature, body = Receiver.got[0]
    assert payload["alert"]["customer_id"] == cid
    assert signature == "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest()
    def deliveries():
        with app.state.store.engine.connect() as connection:
            return connection.execute(select(t.deliveries)).mappings().all()

    # the receiver's 204 is recorded just after it is sent
    assert wait_for(lambda: any(r["status"] == "delivered" for r in deliveries()), timeout=15)
    assert wait_for(lambda: all(r["attempts"] >= 1 for r in deliveries()), timeout=15)
    rows = deliveries()
    live = [r for r in rows if r["url"].endswith("/hook")]
    dead = [r for r in rows if "nobody" in r["url"]]
    assert live[0]["status"] == "delivered" and live[0]["attempts"] == 2
    # the dead receiver is retried (pending, error recorded) while ingestion goes on
    assert dead[0]["status"] == "pending" and dead[0]["attempts"] >= 1 and dead[0]["last_error"]
    assert client.post("/v1/events", json=_event(app, 11), headers=headers).status_code == 200


def test_alerts_are_paged(served):
    app, client, headers = served
    service = app.state.service
    with app.state.store.begin() as connection:
        connection.execute(update(t.scores).values(tier="green"))
    reds = sorted(service.customers()["customer_id"].astype(str))[:40]
    service.score(reds)
    everything = client.get("/v1/alerts", params={"limit": 1000}, headers=headers).json()
    pages, after = [], 0
    while True:
        page = client.get("/v1/alerts", params={"limit": 3, "after": after},
                          headers=headers).json()
        pages += page["alerts"]
        if page["next_after"] is None:
            break
        after = page["next_after"]
    assert [a["id"] for a in pages] == [a["id"] for a in everything["alerts"]]
    assert len(pages) >= 2


def test_customer_view_has_the_best_offer(served):
    app, client, headers = served
    cid = some_customer(app)
    view = client.get(f"/v1/customers/{cid}", headers=headers).json()
    assert view["model_version"] == app.state.service.version
    assert 0 <= view["churn_risk"] <= 1 and view["tier"] in ("green", "amber", "red")
    offer = view["best_offer"]
    if offer["offer"] is not None:
        low, high = offer["interval_95"]
        assert low <= offer["expected_net_gain"] <= high and offer["expected_net_gain"] > 0
    else:
        assert offer["why"]
    assert client.get("/v1/customers/nobody", headers=headers).status_code == 404


def test_best_offer_takes_group_averages_where_the_held_out_test_failed(served):
    """An offer whose per-customer predictions failed the test gets the same effect for every
    customer of an effect group, as in a plan: another customer's features (so other
    per-customer predictions) change nothing for the same customer and group; without the
    fallback they would."""
    from dataclasses import replace

    from uplift.effects.calibration import GROUP, campaign_group_means

    app, client, headers = served
    service = app.state.service
    ids = service.customers()["customer_id"].astype(str).tolist()
    with service.store.engine.connect() as connection:
        rows = {r["customer_id"]: r["features"] for r in connection.execute(
            select(t.scores.c.customer_id, t.scores.c.features)).mappings()}
    saved = (service.evidence, service.effect_means, service.spec)
    try:
        service.evidence = {outcome: {o: replace(e, use=GROUP) for o, e in per.items()}
                            for outcome, per in saved[0].items()}
        log = pd.read_parquet(service.models.folder / "backtest.parquet")
        service.effect_means = campaign_group_means(log, service.evidence)
        offer = next(o for o in saved[2].offers if o.eligibility is None)
        service.spec = saved[2].model_copy(update={"offers": [offer], "capacities": []})
        group = np.array(["red|balance falling fast"], dtype=object)

        def gain(features: dict) -> float:
            out = service.best_offer(ids[0], features, group)
            return out.get("expected_net_gain", out.get("best_candidate", {}).get(
                "expected_net_gain"))

        gains = {gain(rows[c]) for c in ids[:5]}
        assert len(gains) == 1 and None not in gains
        service.evidence, service.effect_means = None, {}
        assert len({gain(rows[c]) for c in ids[:5]}) > 1      # per-customer: they differ
    finally:
        service.evidence, service.effect_means, service.spec = saved


@pytest.mark.parametrize("rule", ["list", "flag"])
def test_best_offer_never_goes_to_a_customer_not_to_be_contacted(served, tmp_path, rule):
    """The spec's do-not-contact list and the customers table's flag hold online as in a
    plan (before, the best offer ignored both)."""
    app, client, headers = served
    service = app.state.service
    customers = service.customers()
    consenting = customers["marketing_consent"].astype(str).str.lower().isin(["true", "1"])
    cid = str(customers.loc[consenting.to_numpy(), "customer_id"].iloc[0])
    saved = (service.spec, service._customers, service._do_not_contact)
    try:
        service.spec = saved[0].model_copy(update={"require_consent": True})
        offered = client.get(f"/v1/customers/{cid}", headers=headers).json()["best_offer"]
        assert "contacted" not in offered.get("why", "")
        if rule == "list":
            pd.DataFrame({"customer_id": [cid]}).to_csv(tmp_path / "dnc.csv", index=False)
            service.spec = service.spec.model_copy(update={"do_not_contact": tmp_path / "dnc.csv"})
        else:
            service._customers = customers.assign(
                do_not_contact=np.where(customers["customer_id"].astype(str) == cid, "X", ""))
        view = client.get(f"/v1/customers/{cid}", headers=headers).json()["best_offer"]
        assert view["offer"] is None
        assert view["why"] == f"not to be contacted (do-not-contact {rule})"
    finally:
        service.spec, service._customers, service._do_not_contact = saved


@pytest.mark.parametrize("written", ["as number", "as float", "padded by spaces", "as float text"])
def test_ids_written_as_banks_write_them_reach_the_customer(served, written):
    """Ids are read as the files' ids are (:mod:`uplift.ids`): a JSON number, a whole float,
    spaces around, ``.0`` text all name the same customer; a fraction is refused by field."""
    app, client, _ = served
    token = new_token(app.state.store, name=f"ids-{written.replace(' ', '-')}", role="analyst")
    cid = str(app.state.service.customers()["customer_id"].iloc[11])
    value = {"as number": int(cid), "as float": float(cid), "padded by spaces": f"  {cid} ",
             "as float text": f"{cid}.0"}[written]
    ts = last_day(app) + pd.Timedelta(minutes=7)
    response = client.post("/v1/events", headers=bearer(token), json={
        "customer_id": value, "ts": ts.isoformat(), "event_type": "login", "amount": 0,
        "channel": "app", "event_id": f"ids-{written}"})
    assert response.status_code == 200, response.text
    assert response.json()["customers"][0]["customer_id"] == cid
    view = client.get(f"/v1/customers/%20{cid}.0", headers=bearer(token))
    assert view.status_code == 200 and view.json()["customer_id"] == cid   # canonical
    refused = client.post("/v1/events", headers=bearer(token), json={
        "customer_id": float(cid) + 0.5, "ts": ts.isoformat(), "event_type": "login",
        "amount": 0})
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["events", 0, "customer_id"]


def test_an_event_id_reused_for_another_event_is_a_conflict(served):
    app, client, headers = served
    first = _event(app, 41, event_id="reuse-1")
    assert client.post("/v1/events", json=first, headers=headers).status_code == 200
    retry = client.post("/v1/events", json=first, headers=headers)
    assert retry.status_code == 200 and retry.json()["duplicates"] == 1
    before = app.state.store.count("events")
    changed = client.post("/v1/events", headers=headers,
                          json=[_event(app, 42, event_id="fresh-9"), {**first, "amount": 99.0}])
    assert changed.status_code == 409, changed.text
    assert changed.json()["detail"][0]["loc"] == ["events", 1, "event_id"]
    inside = client.post("/v1/events", headers=headers, json=[
        _event(app, 43, event_id="twice"), _event(app, 44, event_id="twice")])
    assert inside.status_code == 409
    assert app.state.store.count("events") == before          # nothing of either batch


def test_a_page_view_without_its_page_is_refused(served):
    app, client, headers = served
    response = client.post("/v1/events", headers=headers,
                           json=_event(app, 45, event_type="page_view"))
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["events", 0, "page"]


def test_requests_stored_together_keep_their_own_outcomes(served):
    """The worker stores the events of every waiting request in one commit: a request whose
    event_id names another event (stored, or posted by an earlier request of the same group)
    gets its conflict and stores nothing; the others are stored and scored, retries are
    duplicates."""
    from uplift.service.events import parse_batch
    from uplift.service.scoring import EventConflict

    app, _, _ = served
    service = app.state.service
    before = app.state.store.count("events")

    def records(*events):
        parsed, errors = parse_batch(list(events))
        assert not errors
        return parsed

    first = records(_event(app, 51, event_id="group-1"))
    clash = records(_event(app, 52, event_id="group-2"),
                    {**_event(app, 51, event_id="group-1"), "amount": 7.0})
    retry = records(_event(app, 51, event_id="group-1"))
    other = records(_event(app, 53, event_id="group-3", event_type="complaint",
                           topic="fees"))
    outcomes = service._store_batches([first, clash, retry, other])
    assert outcomes[0][:2] == (1, 0)
    assert isinstance(outcomes[1], EventConflict) and outcomes[1].positions == [1]
    assert outcomes[2][:2] == (0, 1) and outcomes[2][2] == []
    assert outcomes[3][:2] == (1, 0)
    assert app.state.store.count("events") == before + 2
    # through the worker: one job's conflict leaves the other's score intact
    good = service.ingest(records(_event(app, 54, event_id="group-4")))
    bad = service.ingest(records({**_event(app, 53, event_id="group-3"), "amount": 3.0}))
    stored, duplicates, scores = good.result(timeout=60)
    assert (stored, duplicates) == (1, 0) and list(scores) == [some_customer(app)]
    assert "churn_risk" in scores[some_customer(app)]
    with pytest.raises(EventConflict):
        bad.result(timeout=60)
    assert app.state.store.count("events") == before + 3


def test_a_request_gone_before_its_turn_stores_nothing_and_the_worker_goes_on(served):
    """A job cancelled while queued (its request timed out or the client left) is dropped
    without storing its events; the worker keeps serving the others."""
    from concurrent.futures import Future

    from uplift.service.events import parse_batch
    from uplift.service.scoring import _Job

    app, _, _ = served
    service = app.state.service
    before = app.state.store.count("events")
    records, _ = parse_batch(_event(app, 61, event_id="gone-1"))
    gone = _Job([], records, Future())
    assert gone.future.cancel()
    kept = _Job([], parse_batch(_event(app, 62, event_id="kept-1"))[0], Future())
    service._serve([gone, kept])
    assert kept.future.result(timeout=5)[:2] == (1, 0)
    assert app.state.store.count("events") == before + 1
    stored, _, scores = service.ingest(parse_batch(_event(app, 63, event_id="after-1"))[0]) \
        .result(timeout=60)
    assert stored == 1 and scores


@pytest.mark.parametrize(("field", "written", "meant"), [
    ("page", "Account_Closing", "account_closing"), ("page", " rate-comparison ",
                                                     "rate_comparison"),
    ("channel", "APP", "app"), ("topic", "FEES", "fees")])
def test_a_vocabulary_value_spelled_otherwise_is_refused_naming_the_value_meant(
        served, field, written, meant):
    """As written it would be stored and match no feature (the event silently ignored)."""
    app, client, headers = served
    before = app.state.store.count("events")
    event = {**_event(app, 71, event_type="page_view", page="home"), field: written}
    response = client.post("/v1/events", json=event, headers=headers)
    assert response.status_code == 422
    detail = response.json()["detail"][0]
    assert detail["loc"] == ["events", 0, field] and repr(meant) in detail["msg"]
    assert app.state.store.count("events") == before


def test_text_fields_are_bounded_and_other_values_kept(served):
    app, client, headers = served
    long = client.post("/v1/events", headers=headers,
                       json=_event(app, 72, event_type="complaint", topic="x" * 65))
    assert long.status_code == 422 and "at most 64" in long.json()["detail"][0]["msg"]
    other = client.post("/v1/events", headers=headers,
                        json=_event(app, 73, event_type="page_view", page="mortgage_offers"))
    assert other.status_code == 200 and other.json()["stored"] == 1


def test_a_closed_customer_is_shown_closed_without_an_offer(served):
    app, client, headers = served
    customers = app.state.service.customers()
    closed = customers[customers["close_date"].notna()]
    if closed.empty:
        pytest.skip("no closed customer in the slice")
    cid = str(closed["customer_id"].iloc[0])
    view = client.get(f"/v1/customers/{cid}", headers=headers).json()
    assert view["open"] is False
    assert view["best_offer"]["offer"] is None and "closed on" in view["best_offer"]["why"]
    some = client.get(f"/v1/customers/{some_customer(app)}", headers=headers).json()
    assert some["open"] is (str(some_customer(app)) not in set(closed["customer_id"]))


def test_an_account_close_event_closes_the_customer_and_ends_their_alerts(served):
    """The bank's account_close event: the customer is shown closed, gets no offer, raises
    no retention alert after it, and leaves the tier counts (before, nothing changed)."""
    app, client, headers = served
    service = app.state.service
    closed_dates = service.customers()["close_date"]
    still_open = set(service.customers().loc[closed_dates.isna().to_numpy(), "customer_id"]
                     .astype(str))
    with app.state.store.engine.connect() as connection:
        at_risk = [c for (c,) in connection.execute(select(t.scores.c.customer_id).where(
            t.scores.c.tier != "green")) if c in still_open]
    cid = at_risk[-1]                      # scored above green: re-scored from green it escalates
    planner = bearer(new_token(app.state.store, name="tiers-reader", role="planner"))
    before = client.get("/v1/tiers", headers=planner).json()
    closing = client.post("/v1/events", headers=headers, json=_event(
        app, 80, customer_id=cid, event_type="account_close", channel="branch"))
    assert closing.status_code == 200 and closing.json()["customers"][0]["open"] is False
    view = client.get(f"/v1/customers/{cid}", headers=headers).json()
    assert view["open"] is False and "closed on" in view["best_offer"]["why"]
    with app.state.store.begin() as connection:        # would escalate if still a customer
        connection.execute(update(t.scores).where(t.scores.c.customer_id == cid)
                           .values(tier="green"))
    later = client.post("/v1/events", headers=headers, json=_event(app, 81, customer_id=cid))
    assert "escalated_from" not in later.json()["customers"][0]
    after = client.get("/v1/tiers", headers=planner).json()
    assert after["scored"] == before["scored"] - 1
    assert after["closed_not_counted"] == before["closed_not_counted"] + 1
    assert sum(r["customers"] for r in after["tiers"]) == after["scored"]
    assert before["closed_not_counted"] == int(
        (pd.to_datetime(closed_dates) < pd.Timestamp(service.current_day())).sum())


def test_an_unknown_id_that_is_a_known_one_padded_otherwise_says_so(served):
    app, client, headers = served
    cid = str(some_customer(app))
    padded = client.get(f"/v1/customers/{cid.zfill(len(cid) + 2)}", headers=headers)
    assert padded.status_code == 404 and f"{cid!r} is known" in padded.json()["detail"]
    nobody = client.get("/v1/customers/99999999999", headers=headers)
    assert nobody.status_code == 404 and "is known" not in nobody.json()["detail"]
    posted = client.post("/v1/events", headers=headers,
                         json=_event(app, 90, customer_id=cid.zfill(len(cid) + 2)))
    assert posted.status_code == 422 and f"{cid!r} is known" in posted.text


def test_openapi_documents_the_event_body_and_the_bearer_token(served):
    _, client, _ = served
    document = client.get("/openapi.json").json()
    body = document["paths"]["/v1/events"]["post"]["requestBody"]["content"][
        "application/json"]["schema"]
    event = body["oneOf"][0]
    assert set(event["required"]) == {"customer_id", "ts", "event_type", "amount"}
    assert "account_closing" in event["properties"]["page"]["description"]
    schemes = document["components"]["securitySchemes"]
    assert any(s.get("scheme", "").lower() == "bearer" for s in schemes.values())
    assert document["paths"]["/v1/events"]["post"].get("security")


def test_an_id_beyond_exact_json_numbers_is_asked_for_as_text():
    from uplift.service.events import parse_batch

    event = {"ts": "2025-01-01T10:00:00", "event_type": "login", "amount": 0}
    _, errors = parse_batch({**event, "customer_id": 1e17})
    assert "send the id as text" in errors[0]["msg"]
    _, errors = parse_batch({**event, "customer_id": 12.5})
    assert "whole number" in errors[0]["msg"]
    records, errors = parse_batch({**event, "customer_id": "100000000000000000"})
    assert not errors and records[0]["customer_id"] == "100000000000000000"


def test_an_event_far_after_the_data_is_refused_not_moving_every_score(served):
    """A mistyped year would move the as-of date of every later score: refused by field;
    a request whose events walk forward a day at a time is not."""
    app, client, headers = served
    before = app.state.store.count("events")
    day_before = app.state.service.current_day()
    jump = client.post("/v1/events", headers=headers, json=[
        _event(app, 81), _event(app, 82 + 40 * 86400, event_type="complaint", topic="fees")])
    assert jump.status_code == 422
    detail = jump.json()["detail"]
    assert [d["loc"] for d in detail] == [["events", 1, "ts"]]
    assert "--max-days-ahead" in detail[0]["msg"]
    assert app.state.store.count("events") == before
    assert app.state.service.current_day() == day_before
    walk = [_event(app, 90 + k * 2 * 86400, event_id=f"walk-{k}") for k in range(3)]
    assert client.post("/v1/events", headers=headers, json=walk[::-1]).status_code == 200
