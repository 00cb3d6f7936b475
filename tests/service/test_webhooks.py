"""Webhook deliveries name the alert they carry (its own id) and the delivery apart."""

from __future__ import annotations

import json

from uplift.service import schema as t
from uplift.service.store import Store, utcnow
from uplift.service.webhooks import Deliverer


class Recorder:
    """An HTTP client that records each POST and answers 204."""

    def __init__(self):
        self.sent = []

    def post(self, url, content, headers):
        self.sent.append((url, json.loads(content), headers))
        return type("Response", (), {"status_code": 204})()


def test_a_delivery_carries_its_alerts_id_not_its_own(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        now = utcnow()
        alert = {"customer_id": "c", "segment": "s", "from_tier": "green", "churn_risk": 0.5,
                 "reasons": ["r"], "as_of": "2026-01-01", "model_version": "m",
                 "created_at": now}
        with store.begin() as connection:
            for seq, tier in enumerate(("amber", "red", "red")):   # alert ids 1, 2, 3
                connection.execute(t.alerts.insert().values(**alert, tier=tier, event_seq=seq))
            connection.execute(t.deliveries.insert().values(      # delivery 1 for alert 3
                alert_id=3, url="http://receiver", status="pending", attempts=0,
                next_attempt_at=now))
        client = Recorder()
        assert Deliverer(store, b"secret").send_due(client) == 1
        _, body, headers = client.sent[0]
        assert body["delivery_id"] == 1 and headers["X-Uplift-Delivery"] == "1"
        assert body["alert"]["id"] == 3 and body["alert"]["tier"] == "red"
        with store.engine.connect() as connection:
            row = connection.execute(t.deliveries.select()).mappings().one()
        assert row["status"] == "delivered" and row["attempts"] == 1
    finally:
        store.close()
