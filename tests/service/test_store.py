"""The store: Alembic creates exactly the declared tables on SQLite and PostgreSQL, tokens
are stored hashed, and the whole service runs on PostgreSQL through the same code."""

from __future__ import annotations

import pandas as pd
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from tests.service.conftest import bearer, fresh_postgres, last_day, postgres_url, some_customer
from uplift.service import schema as t
from uplift.service.auth import digest, identify, new_token
from uplift.service.store import Store


def _schema_of(store: Store) -> dict[str, set[str]]:
    inspector = sa.inspect(store.engine)
    return {name: {c["name"] for c in inspector.get_columns(name)}
            for name in inspector.get_table_names() if name != "alembic_version"}


def _check_store(url: str) -> None:
    store = Store(url)
    try:
        declared = {name: {c.name for c in table.columns}
                    for name, table in t.metadata.tables.items()}
        assert _schema_of(store) == declared
        with store.engine.connect() as connection:
            revision = connection.execute(sa.text("SELECT version_num FROM alembic_version")
                                          ).scalar()
        assert revision == store.revision
        secret = new_token(store, name="someone", role="viewer")
        with store.engine.connect() as connection:
            stored = connection.execute(sa.select(t.tokens.c.secret_sha256)).scalar()
        assert stored == digest(secret) and secret not in stored
        assert identify(store, secret).role == "viewer"
        altered = secret[:-1] + ("B" if secret.endswith("A") else "A")
        assert identify(store, altered) is None
    finally:
        store.close()
    Store(url).close()            # opening again: the migration is a no-op


def test_sqlite_store(tmp_path):
    _check_store(str(tmp_path / "store.db"))
    with sa.create_engine(f"sqlite:///{tmp_path / 'store.db'}").connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_postgres_store():
    _check_store(fresh_postgres(postgres_url()))


def test_service_on_postgres(make_app):
    app = make_app(db=fresh_postgres(postgres_url()))
    assert app.state.store.dialect == "postgresql"
    client = TestClient(app)
    headers = bearer(new_token(app.state.store, name="pg-analyst", role="analyst"))
    event = {"event_id": "pg-1", "customer_id": some_customer(app), "event_type": "complaint",
             "ts": (last_day(app) + pd.Timedelta(minutes=1)).isoformat(), "amount": 0,
             "topic": "fees"}
    first = client.post("/v1/events", json=event, headers=headers)
    again = client.post("/v1/events", json=event, headers=headers)
    assert first.status_code == 200 and first.json()["stored"] == 1
    assert again.json()["duplicates"] == 1
    view = client.get(f"/v1/customers/{event['customer_id']}", headers=headers).json()
    assert view["churn_risk"] == first.json()["customers"][0]["churn_risk"]
    assert client.get("/readyz").status_code == 200


@pytest.mark.parametrize("url", ["mysql://nobody@localhost/db", "oracle://x"])
def test_other_databases_are_refused(url):
    from uplift.errors import InputError

    with pytest.raises(InputError, match="only sqlite"):
        Store(url)
