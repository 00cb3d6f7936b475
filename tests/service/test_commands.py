"""`uplift tokens new` and `uplift serve` argument checks (the server itself runs in
test_crash.py)."""

from __future__ import annotations

from datetime import datetime

from uplift.cli import run
from uplift.service import schema as t
from uplift.service.auth import identify
from uplift.service.store import Store


def _seeded(path) -> str:
    """A store with one customer, as `uplift serve --data` leaves it."""
    db = str(path)
    store = Store(db)
    try:
        with store.begin() as connection:
            connection.execute(t.customers.insert().values(
                customer_id="1", segment="silent", open_date=datetime(2020, 1, 1), attrs={}))
    finally:
        store.close()
    return db


def test_tokens_need_the_servers_store(tmp_path, capsys):
    """A token made in a store that does not exist, or holds no customers, would not be known
    to the running server: refused, and no store is created."""
    missing = tmp_path / "elsewhere" / "store.db"
    assert run(["tokens", "new", "--role", "analyst", "--name", "x", "--db", str(missing)]) == 2
    assert "no store here" in capsys.readouterr().err and not missing.parent.exists()
    empty = tmp_path / "empty.db"
    Store(str(empty)).close()
    for command in (["new", "--role", "analyst", "--name", "x"], ["list"],
                    ["revoke", "--name", "x"]):
        assert run(["tokens", *command, "--db", str(empty)]) == 2
        assert "holds no customers" in capsys.readouterr().err


def test_tokens_new_prints_a_working_token(tmp_path, capsys):
    db = _seeded(tmp_path / "store.db")
    assert run(["tokens", "new", "--role", "approver", "--name", "Ann", "--db", db]) == 0
    secret = capsys.readouterr().out.strip()
    store = Store(db)
    try:
        assert identify(store, secret).role == "approver"
    finally:
        store.close()
    # the same name twice, or an unknown role: refused with exit 2
    assert run(["tokens", "new", "--role", "viewer", "--name", "Ann", "--db", db]) == 2
    assert run(["tokens", "new", "--role", "root", "--name", "Bob", "--db", db]) == 2
    assert "roles are viewer, analyst" in capsys.readouterr().err


def test_tokens_revoke_and_list(tmp_path, capsys):
    db = _seeded(tmp_path / "store.db")
    assert run(["tokens", "new", "--role", "analyst", "--name", "feed", "--db", db]) == 0
    secret = capsys.readouterr().out.strip()
    assert run(["tokens", "list", "--db", db]) == 0
    listed = capsys.readouterr().out
    assert "feed\tanalyst" in listed and "revoked" not in listed and secret not in listed
    assert run(["tokens", "revoke", "--name", "feed", "--db", db]) == 0
    store = Store(db)
    try:
        assert identify(store, secret) is None               # 401 from now on
    finally:
        store.close()
    assert run(["tokens", "list", "--db", db]) == 0
    assert "revoked" in capsys.readouterr().out
    assert run(["tokens", "revoke", "--name", "feed", "--db", db]) == 2   # already revoked
    assert run(["tokens", "revoke", "--name", "nobody", "--db", db]) == 2
    assert "no active token" in capsys.readouterr().err


def test_serve_needs_a_model(tmp_path, capsys):
    assert run(["serve", "--db", str(tmp_path / "s.db")]) == 2
    assert "--model" in capsys.readouterr().err
