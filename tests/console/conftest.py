"""Console fixtures: one service (small bank, models trained once) served by uvicorn on a
loopback port, one headless Chromium (Debian's /usr/bin/chromium driven by Playwright), and a
signed-in browser context per role. ``UPLIFT_REQUIRE_BROWSER=1`` (set by `.ci/run`) turns a
missing browser into a failure instead of a skip."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

from tests.service.conftest import served_bank, served_models  # noqa: F401 (fixtures)

CHROMIUM = os.environ.get("UPLIFT_CHROMIUM", "/usr/bin/chromium")
ROLES = ("viewer", "analyst", "planner", "approver", "officer", "admin")


def _missing(reason: str):
    if os.environ.get("UPLIFT_REQUIRE_BROWSER") == "1":
        pytest.fail(f"UPLIFT_REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed")
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        _missing(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def server(served_models, served_bank, tmp_path_factory):  # noqa: F811
    """The service with the console on http://127.0.0.1:PORT; tokens for every role."""
    import uvicorn

    from uplift.service import auth
    from uplift.service.api import create_app
    from uplift.service.settings import ServiceSettings

    folder = tmp_path_factory.mktemp("console")
    app = create_app(ServiceSettings(db=str(folder / "store.db"), model=served_models,
                                     data=served_bank, state=folder))
    tokens = {role: auth.new_token(app.state.store, name=f"{role}-1", role=role)
              for role in ROLES}
    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                            lifespan="off")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert srv.started, "the console's server did not start"
    yield {"url": f"http://127.0.0.1:{port}", "app": app, "tokens": tokens,
           "folder": folder}
    srv.should_exit = True
    thread.join(10)
    app.state.service.stop()
    app.state.jobs.stop()
    app.state.store.close()


@pytest.fixture(scope="session")
def contexts(browser, server):
    """A browser context per role, signed in through the sign-in page."""
    made = {}

    def get(role: str):
        if role not in made:
            context = browser.new_context(base_url=server["url"],
                                          viewport={"width": 1280, "height": 900})
            page = context.new_page()
            sign_in(page, server["tokens"][role])
            page.close()
            made[role] = context
        return made[role]

    yield get
    for context in made.values():
        context.close()


def sign_in(page, token: str) -> None:
    page.goto("/login")
    page.fill("#token", token)
    page.click("#login-form button[type=submit]")
    page.wait_for_url("**/")


def shots() -> Path | None:
    """Where the tests save page screenshots (UPLIFT_CONSOLE_SHOTS; the README's are in
    docs/console/)."""
    folder = os.environ.get("UPLIFT_CONSOLE_SHOTS")
    if not folder:
        return None
    Path(folder).mkdir(parents=True, exist_ok=True)
    return Path(folder)
