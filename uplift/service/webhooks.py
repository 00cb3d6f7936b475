"""Webhook deliveries of alerts: signed, retried with back-off, at least once, recorded.

Each escalation gets one ``deliveries`` row per webhook URL in the same transaction as the
alert, so a crash can not lose it. A background thread POSTs pending rows (JSON body, header
``X-Uplift-Signature: sha256=<HMAC-SHA256 of the body under the webhook secret>``,
``X-Uplift-Delivery: <id>``); a 2xx answer marks the row delivered, anything else (an error,
a timeout, a dead receiver) schedules the next attempt after ``min(60, 0.5 * 2^attempts)``
seconds. Ingestion never waits for a receiver: it only writes rows. A receiver may see a
delivery twice (after a crash between its 2xx and our record): deduplicate by the delivery id.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from datetime import timedelta

from sqlalchemy import select

from uplift.service import schema as t
from uplift.service.store import Store, utcnow

TIMEOUT_SECONDS = 2.0
MAX_DELAY_SECONDS = 60.0


def signature(secret: bytes, body: bytes) -> str:
    """Header value for ``body``: ``sha256=`` + hex HMAC-SHA256."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def backoff(attempts: int) -> float:
    """Seconds before the next attempt after ``attempts`` failures."""
    return min(MAX_DELAY_SECONDS, 0.5 * 2 ** max(attempts - 1, 0))


class Deliverer:
    """Background sender of pending deliveries."""

    def __init__(self, store: Store, secret: bytes, *, on_result=None):
        self.store = store
        self.secret = secret
        self.on_result = on_result or (lambda ok: None)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="webhooks", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=TIMEOUT_SECONDS + 5)

    def notify(self) -> None:
        self._wake.set()

    def pending(self) -> int:
        with self.store.engine.connect() as connection:
            return len(connection.execute(select(t.deliveries.c.id).where(
                t.deliveries.c.status == "pending")).all())

    def _run(self) -> None:
        import httpx

        with httpx.Client(timeout=TIMEOUT_SECONDS) as client:
            while not self._stop.is_set():
                sent = self.send_due(client)
                if not sent:
                    self._wake.wait(0.5)
                    self._wake.clear()

    def send_due(self, client) -> int:
        """Attempt every due delivery once; returns how many were attempted."""
        now = utcnow()
        d, a = t.deliveries, t.alerts
        with self.store.engine.connect() as connection:
            due = connection.execute(
                select(d.c.id.label("delivery_id"), d.c.url, d.c.attempts, a)
                .join(a, a.c.id == d.c.alert_id)
                .where(d.c.status == "pending", d.c.next_attempt_at <= now)
                .order_by(d.c.id).limit(50)).mappings().all()
        for row in due:
            if self._stop.is_set():
                break
            body = json.dumps({"delivery_id": row["delivery_id"], "alert": alert_json(row)},
                              sort_keys=True).encode("utf-8")
            error = None
            try:
                response = client.post(row["url"], content=body, headers={
                    "Content-Type": "application/json",
                    "X-Uplift-Signature": signature(self.secret, body),
                    "X-Uplift-Delivery": str(row["delivery_id"])})
                if not 200 <= response.status_code < 300:
                    error = f"HTTP {response.status_code}"
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"[:500]
            attempts = row["attempts"] + 1
            values = {"attempts": attempts, "last_error": error}
            if error is None:
                values.update(status="delivered", delivered_at=utcnow())
            else:
                values["next_attempt_at"] = utcnow() + timedelta(seconds=backoff(attempts))
            with self.store.begin() as connection:
                connection.execute(d.update().where(d.c.id == row["delivery_id"])
                                   .values(**values))
            self.on_result(error is None)
        return len(due)


def alert_json(row) -> dict:
    """An alert row as the API and webhooks show it."""
    return {"id": row["id"], "customer_id": row["customer_id"], "segment": row["segment"],
            "from_tier": row["from_tier"], "tier": row["tier"],
            "churn_risk": row["churn_risk"], "reasons": row["reasons"], "as_of": row["as_of"],
            "model_version": row["model_version"],
            "created_at": row["created_at"].isoformat() + "Z"}
