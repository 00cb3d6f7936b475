"""`uplift tokens new` and `uplift serve` argument checks (the server itself runs in
test_crash.py)."""

from __future__ import annotations

from uplift.cli import run
from uplift.service.auth import identify
from uplift.service.store import Store


def test_tokens_new_prints_a_working_token(tmp_path, capsys):
    db = str(tmp_path / "store.db")
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
    db = str(tmp_path / "store.db")
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
