"""With a pseudonym key the store holds no raw customer id: seeded from the bank's files and
fed by the API in raw ids, it keeps pseudonyms only; callers get their own ids back; a store
is never opened with the other kind of ids."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from tests.service.conftest import bearer
from uplift.errors import InputError
from uplift.security.pseudonym import is_pseudonym
from uplift.service.auth import new_token

KEY = "ab" * 32


@pytest.fixture(scope="module")
def keyed(make_app, served_bank):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("UPLIFT_PSEUDONYM_KEY", KEY)
        patch.delenv("UPLIFT_PSEUDONYM_KEY_FILE", raising=False)
        app = make_app()
        raw = pd.read_parquet(served_bank / "customers.parquet")["customer_id"].astype(str)
        yield app, sorted(raw), patch


def test_raw_ids_in_pseudonyms_stored_raw_ids_answered(keyed):
    app, raw, _ = keyed
    store = app.state.store
    stored = pd.Series(app.state.service.customers()["customer_id"].astype(str))
    assert is_pseudonym(stored).all() and len(stored) == len(raw)
    token = new_token(store, name="keyed-analyst", role="analyst")
    client = TestClient(app)
    cid = raw[5]
    ts = pd.Timestamp(store.last_event_ts()) + pd.Timedelta(minutes=3)
    response = client.post("/v1/events", headers=bearer(token), json=[
        {"event_id": "k-1", "customer_id": cid, "ts": ts.isoformat(),
         "event_type": "complaint", "amount": 0, "topic": "fees"}])
    assert response.status_code == 200, response.text
    assert [c["customer_id"] for c in response.json()["customers"]] == [cid]
    view = client.get(f"/v1/customers/{cid}", headers=bearer(token))
    assert view.status_code == 200 and view.json()["customer_id"] == cid
    unknown = client.post("/v1/events", headers=bearer(token), json={
        "customer_id": "99999999", "ts": ts.isoformat(), "event_type": "login", "amount": 0})
    assert unknown.status_code == 422 and "'99999999'" in unknown.text
    alerts = client.get("/v1/alerts", headers=bearer(token)).json()
    assert all(is_pseudonym(pd.Series([a["customer_id"]])).all()
               for a in alerts.get("alerts", []))
    store.close()
    assert not _raw_ids_in(app, raw)                 # no raw id anywhere in the store's file


def _raw_ids_in(app, raw: list[str]) -> set[str]:
    """Raw ids found in the SQLite store's files (database and write-ahead log)."""
    path = app.state.settings.db.split("///")[-1]
    data = b"".join(Path(p).read_bytes() for p in (path, path + "-wal") if os.path.exists(p))
    width = len(raw[0])
    return set(re.findall(rf"(?<![0-9a-f])[0-9]{{{width}}}(?![0-9a-f])",
                          data.decode("latin-1"))) & set(raw)


def test_a_store_is_not_opened_with_the_other_kind_of_ids(keyed, make_app):
    app, raw, patch = keyed
    patch.delenv("UPLIFT_PSEUDONYM_KEY")
    with pytest.raises(InputError, match="pseudonymised ids"):
        make_app(db=app.state.store.url)
    plain = make_app()                               # no key: raw ids (the check can fail)
    plain.state.service.stop()
    plain.state.store.close()
    assert _raw_ids_in(plain, raw)
    patch.setenv("UPLIFT_PSEUDONYM_KEY", KEY)
    with pytest.raises(InputError, match="raw customer ids"):
        make_app(db=plain.state.store.url)
