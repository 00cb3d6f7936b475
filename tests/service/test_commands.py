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


def test_serve_needs_a_model(tmp_path, capsys):
    assert run(["serve", "--db", str(tmp_path / "s.db")]) == 2
    assert "--model" in capsys.readouterr().err
