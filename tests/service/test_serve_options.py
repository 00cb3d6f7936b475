"""`uplift serve` hands every option to the app it builds (settings, host, port), on the
demo path too; uvicorn and the demo's heavy steps are replaced by recorders."""

from __future__ import annotations

from pathlib import Path

import pytest

from uplift.cli import run


@pytest.fixture
def recorded(monkeypatch):
    import uvicorn

    import uplift.service.api as api
    import uplift.service.demo as demo

    seen: dict = {}
    monkeypatch.setattr(api, "create_app", lambda settings: seen.setdefault("app", settings))
    monkeypatch.setattr(uvicorn, "run", lambda app, host, port, **_: seen.update(
        served=app, host=host, port=port))
    monkeypatch.setattr(demo, "demo_settings", lambda state, db, progress: seen.setdefault(
        "demo", __import__("types").SimpleNamespace(state=state, db=db, webhooks=[],
                                                    webhook_secret=None)))
    monkeypatch.setattr(demo, "start_replay", lambda app, port, progress: seen.update(
        replay_port=port))
    return seen


def test_serve_passes_every_option_to_the_app(tmp_path, recorded, monkeypatch):
    monkeypatch.setenv("UPLIFT_WEBHOOK_SECRET", "s3cret")
    db = str(tmp_path / "store" / "s.db")
    args = ["serve", "--model", str(tmp_path / "models"), "--campaign", str(tmp_path / "c.yaml"),
            "--data", str(tmp_path / "bank"), "--db", db, "--host", "127.0.0.2", "--port", "8123",
            "--webhook", "http://127.0.0.1:9/a", "--webhook", "http://127.0.0.1:9/b",
            "--config", str(tmp_path / "s.yaml"), "--state", str(tmp_path / "state"),
            "--max-days-ahead", "10", "--docs"]
    assert run(args) == 0
    settings = recorded["app"]
    assert settings.max_days_ahead == 10 and settings.docs
    assert settings.model == tmp_path / "models" and settings.data == tmp_path / "bank"
    assert settings.campaign == tmp_path / "c.yaml" and settings.config == tmp_path / "s.yaml"
    assert settings.db == db and Path(db).parent.is_dir()       # the SQLite folder is made
    assert settings.webhooks == ["http://127.0.0.1:9/a", "http://127.0.0.1:9/b"]
    assert settings.webhook_secret == b"s3cret" and settings.state == tmp_path / "state"
    assert (recorded["host"], recorded["port"]) == ("127.0.0.2", 8123)


def test_serve_demo_replays_on_the_port_it_serves(tmp_path, recorded):
    assert run(["serve", "--demo", "--port", "8124", "--state", str(tmp_path / "state"),
                "--webhook", "http://127.0.0.1:9/x"]) == 0
    assert recorded["demo"].state == tmp_path / "state" and recorded["demo"].db is None
    assert recorded["demo"].webhooks == ["http://127.0.0.1:9/x"]
    assert recorded["replay_port"] == recorded["port"] == 8124


def test_a_demo_store_is_kept_across_starts(tmp_path, monkeypatch, served_bank, served_models):
    """Nothing posted to the demo is lost when it starts again: the store is seeded once and
    then used as it is (the replay's events are retries)."""
    import types

    import pandas as pd

    import uplift.pipeline as pipeline
    from uplift.service import schema as t
    from uplift.service.demo import demo_settings
    from uplift.service.events import parse_batch
    from uplift.service.store import Store

    fake = types.SimpleNamespace(data=served_bank,
                                 models=types.SimpleNamespace(folder=served_models))
    monkeypatch.setattr(pipeline, "demo_run", lambda cache, progress: fake)
    said: list[str] = []
    first = demo_settings(tmp_path / "state", None, said.append)
    store = Store(first.db)
    try:
        seeded = store.count("events")
        customer = str(store.customers_frame()["customer_id"].iloc[0])
        records, errors = parse_batch({"event_id": "kept", "customer_id": customer,
                                       "ts": "2020-01-01T10:00:00", "event_type": "login",
                                       "amount": 0, "channel": "app"})
        assert not errors
        with store.begin() as connection:
            connection.execute(t.events.insert(), [{**records[0],
                                                    "received_at": pd.Timestamp.now()}])
    finally:
        store.close()
    second = demo_settings(tmp_path / "state", None, said.append)
    assert second.db == first.db
    store = Store(second.db)
    try:
        assert store.count("events") == seeded + 1
    finally:
        store.close()
    assert said[0].startswith("seeding the demo store") and "as it is" in said[-1]


def test_a_demo_start_revokes_the_tokens_of_earlier_starts(tmp_path):
    """Each demo start prints new tokens; the earlier starts' ones are revoked, other
    tokens are kept."""
    from uplift.service.auth import identify, new_token
    from uplift.service.demo import revoke_demo_tokens
    from uplift.service.store import Store

    store = Store(f"sqlite:///{tmp_path / 'demo.db'}")
    try:
        old = [new_token(store, name=f"demo-{kind}-1", role="analyst")
               for kind in ("analyst", "replay")]
        kept = new_token(store, name="ops", role="viewer")
        assert revoke_demo_tokens(store) == 2
        assert all(identify(store, secret) is None for secret in old)
        assert identify(store, kept).role == "viewer"
        assert revoke_demo_tokens(store) == 0
    finally:
        store.close()


def test_the_swagger_page_is_served_only_with_docs(make_app):
    """Swagger UI loads its scripts from a CDN: off by default, the schema always there."""
    from fastapi.testclient import TestClient

    plain = TestClient(make_app())
    assert plain.get("/docs").status_code == 404
    assert plain.get("/openapi.json").status_code == 200
    assert TestClient(make_app(docs=True)).get("/docs").status_code == 200
