"""Service fixtures: models trained once on the small bank, a 250-customer slice of it that
seeds the stores, app factories on SQLite and on the PostgreSQL server `.ci/run` starts."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("fastapi")

SLICE = 250


@pytest.fixture(scope="session")
def served_models(small_bank_dir, tmp_path_factory) -> Path:
    """Churn and effects models trained on the small bank (seed 0)."""
    from uplift.cli import run

    out = tmp_path_factory.mktemp("served") / "models"
    assert run(["--quiet", "train", "--data", str(small_bank_dir), "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="session")
def served_bank(small_bank_dir, tmp_path_factory) -> Path:
    """The first 250 customers of the small bank with their events and campaign rows."""
    out = tmp_path_factory.mktemp("served") / "bank"
    out.mkdir()
    customers = pd.read_parquet(small_bank_dir / "customers.parquet")
    keep = set(customers["customer_id"].iloc[:SLICE])
    customers[customers["customer_id"].isin(keep)].to_parquet(out / "customers.parquet",
                                                              index=False)
    for name in ("events", "campaign_log"):
        frame = pd.read_parquet(small_bank_dir / f"{name}.parquet")
        frame[frame["customer_id"].isin(keep)].to_parquet(out / f"{name}.parquet", index=False)
    return out


def postgres_url() -> str | None:
    """The test server's URL (UPLIFT_TEST_DATABASE_URL); in CI (UPLIFT_REQUIRE_POSTGRES=1)
    a missing or unreachable server fails the tests instead of skipping them."""
    url = os.environ.get("UPLIFT_TEST_DATABASE_URL")
    required = os.environ.get("UPLIFT_REQUIRE_POSTGRES") == "1"
    if not url:
        if required:
            pytest.fail("UPLIFT_REQUIRE_POSTGRES=1 but UPLIFT_TEST_DATABASE_URL is not set")
        pytest.skip("no PostgreSQL server (set UPLIFT_TEST_DATABASE_URL)")
    return url


def fresh_postgres(url: str) -> str:
    """A new empty database on the test server; returns its URL."""
    import sqlalchemy as sa

    from uplift.service.store import normalise_url

    name = f"uplift_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(normalise_url(url), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        if os.environ.get("UPLIFT_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL at {url} is unreachable: {exc}")
        pytest.skip(f"PostgreSQL at {url} is unreachable")
    finally:
        engine.dispose()
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


@pytest.fixture(scope="module")
def make_app(served_models, served_bank, tmp_path_factory):
    """Factory: ``make_app(db=None, **settings)`` -> app (SQLite in a temp folder by
    default); every app is shut down after the module."""
    from uplift.service.api import create_app
    from uplift.service.settings import ServiceSettings

    apps = []

    def make(db: str | None = None, **kwargs):
        folder = tmp_path_factory.mktemp("serve")
        settings = ServiceSettings(db=db or str(folder / "store.db"), model=served_models,
                                   data=served_bank, state=folder, **kwargs)
        app = create_app(settings)
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.state.service.stop()
        if app.state.deliverer is not None:
            app.state.deliverer.stop()
        app.state.jobs.stop()
        app.state.store.close()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def some_customer(app) -> str:
    return str(app.state.service.customers()["customer_id"].iloc[0])


def last_day(app) -> pd.Timestamp:
    """The latest stored event time (new events go just after it)."""
    return pd.Timestamp(app.state.store.last_event_ts())
