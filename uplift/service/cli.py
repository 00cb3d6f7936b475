"""`uplift serve` and `uplift tokens`: parse, build the app, run it (registered in
:mod:`uplift.cli`; FastAPI, SQLAlchemy and uvicorn are imported inside the commands)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

tokens_app = typer.Typer(help="API tokens of the online service (`uplift serve`).",
                         no_args_is_help=True)
DEFAULT_DB = "uplift-serve/store.db"
DbOption = Annotated[str, typer.Option(
    "--db", help="Store: a SQLite file path or sqlite:///FILE (default uplift-serve/store.db) "
    "or postgresql://user:pass@host/db.")]


#: the GIL switch interval while serving (seconds)
SWITCH_INTERVAL_S = 0.0005


def _need_extra() -> None:
    try:
        import fastapi  # noqa: F401
        import sqlalchemy  # noqa: F401
    except ImportError as exc:
        from uplift.errors import InputError

        raise InputError(f"the online service needs the 'serve' extra: pip install "
                         f"'uplift[serve]' ({exc})") from exc


def _sqlite_file(db: str) -> Path | None:
    """The file of a SQLite ``--db`` (a path or sqlite:///FILE); None for a server URL."""
    if "://" not in db or db.startswith("sqlite:///"):
        return Path(db.removeprefix("sqlite:///")).expanduser()
    return None


def _sqlite_folder(db: str) -> None:
    if (file := _sqlite_file(db)) is not None:
        file.parent.mkdir(parents=True, exist_ok=True)


def _service_store(db: str):
    """The store ``uplift serve`` runs on at ``db``, opened; refused (exit 2) when there is
    none: a SQLite file that does not exist, or a store without customers (a token made there
    would not be known to the running server)."""
    from uplift.errors import InputError
    from uplift.service.store import Store

    hint = ("--db names the store `uplift serve` uses (it prints it when it starts; "
            f"default {DEFAULT_DB}, with --demo STATE/demo.db)")
    if (file := _sqlite_file(db)) is not None and not file.exists():
        raise InputError(f"{db}: no store here; {hint}")
    store = Store(db)
    if store.count("customers") == 0:
        store.close()
        raise InputError(f"{db}: the store holds no customers (`uplift serve` seeds it "
                         f"with --data); {hint}")
    return store


def serve(
    model: Annotated[Path | None, typer.Option(help="Model folder from `uplift train` "
                                               "(default with --demo: the demo bank's).")] = None,
    campaign: Annotated[Path | None, typer.Option(help="Campaign spec YAML (default: the "
                                                  "packaged demo spec).")] = None,
    data: Annotated[Path | None, typer.Option(help="Bank folder that seeds an empty store "
                                              "and that plans are made from.")] = None,
    db: DbOption = DEFAULT_DB,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    webhook: Annotated[list[str] | None, typer.Option(
        "--webhook", help="URL that receives each escalation (repeatable); signed with "
        "UPLIFT_WEBHOOK_SECRET.")] = None,
    config: Annotated[Path | None, typer.Option(help="Settings YAML (tiers, value).")] = None,
    state: Annotated[Path, typer.Option(help="Folder for plan files.")] = Path("uplift-serve"),
    demo: Annotated[bool, typer.Option("--demo", help="Serve the demo bank's models on a "
                                       "small slice of its customers and replay its last "
                                       "events so alerts arrive.")] = False,
    max_days_ahead: Annotated[float, typer.Option(
        min=0, help="Refuse an event more than this many days after the latest stored one "
        "(it would move every score's as-of date: a mistyped year); raise it when a feed "
        "resumes after a longer pause.")] = 3.0,
    docs: Annotated[bool, typer.Option("--docs", help="Serve the Swagger UI page at /docs "
                                       "(it loads its scripts from cdn.jsdelivr.net; the "
                                       "OpenAPI schema is always at /openapi.json).")] = False,
) -> None:
    """Run the HTTP API (OpenAPI schema at /openapi.json; the Swagger UI page with --docs)."""
    _need_extra()
    import uvicorn

    from uplift.service.api import create_app
    from uplift.service.settings import ServiceSettings

    secret = os.environ.get("UPLIFT_WEBHOOK_SECRET")
    if demo:
        from uplift.service.demo import demo_settings

        settings = demo_settings(state, db if db != DEFAULT_DB else None,
                                 progress=lambda m: typer.echo(m, err=True))
        settings.webhooks = list(webhook or [])
        settings.webhook_secret = secret.encode() if secret else None
    else:
        if model is None:
            from uplift.errors import InputError

            raise InputError("--model: give the model folder (`uplift train --out DIR`), or "
                             "use --demo")
        _sqlite_folder(db)
        settings = ServiceSettings(db=db, model=model, data=data, campaign=campaign,
                                   config=config, webhooks=list(webhook or []),
                                   webhook_secret=secret.encode() if secret else None,
                                   state=state)
    settings.max_days_ahead = max_days_ahead
    settings.docs = docs
    app = create_app(settings)
    if demo:
        from uplift.service.demo import start_replay

        start_replay(app, port=port, progress=lambda m: typer.echo(m, err=True))
    # a request crosses threads several times (event loop, request thread, scoring worker,
    # audit writer); with the default 5 ms GIL switch interval each crossing can wait that
    # long behind the scoring worker's NumPy work
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    where = "/docs" if docs else "/openapi.json"
    typer.echo(f"serving the store {settings.db} on http://{host}:{port}/ : console at /, API "
               f"docs at {where}; make tokens with uplift tokens new --db {settings.db} --role "
               "ROLE --name NAME", err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)


@tokens_app.command("new")
def tokens_new(
    role: Annotated[str, typer.Option(help="viewer, analyst, planner, approver, officer or "
                                      "admin.")],
    name: Annotated[str, typer.Option(help="Who uses the token (a person or a system).")],
    db: DbOption = DEFAULT_DB,
) -> None:
    """Create an API token; the secret is printed once and only its hash is stored."""
    _need_extra()
    from uplift.service.auth import new_token

    store = _service_store(db)
    try:
        typer.echo(new_token(store, name=name, role=role))
    finally:
        store.close()


@tokens_app.command("revoke")
def tokens_revoke(
    name: Annotated[str, typer.Option(help="The token's name (as given to `tokens new`).")],
    db: DbOption = DEFAULT_DB,
) -> None:
    """Revoke a token: every later request with it is refused (401)."""
    _need_extra()
    from uplift.service.auth import revoke

    store = _service_store(db)
    try:
        revoke(store, name)
    finally:
        store.close()
    typer.echo(f"revoked {name}")


@tokens_app.command("list")
def tokens_list(db: DbOption = DEFAULT_DB) -> None:
    """The tokens: name, role, created, revoked (secrets are never stored)."""
    _need_extra()
    from uplift.service.auth import listing

    store = _service_store(db)
    try:
        rows = listing(store)
    finally:
        store.close()
    for row in rows:
        typer.echo(f"{row['name']}\t{row['role']}\tcreated {row['created']}"
                   + (f"\trevoked {row['revoked']}" if row["revoked"] else ""))
