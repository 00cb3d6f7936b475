"""Prometheus metrics of one app (its own registry, so several apps in one process — tests —
do not collide)."""

from __future__ import annotations

from dataclasses import dataclass

LATENCY_BUCKETS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0)


@dataclass
class Metrics:
    registry: object
    requests: object
    latency: object
    alerts: object
    events: object
    webhooks: object
    model: object

    @classmethod
    def create(cls, version: str) -> Metrics:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        registry = CollectorRegistry()
        model = Gauge("uplift_model_info", "the churn model in use (value 1)", ["version"],
                      registry=registry)
        model.labels(version=version).set(1)
        return cls(
            registry=registry,
            requests=Counter("uplift_requests_total", "HTTP requests",
                             ["method", "route", "status"], registry=registry),
            latency=Histogram("uplift_request_seconds", "request latency (seconds)",
                              ["method", "route"], buckets=LATENCY_BUCKETS, registry=registry),
            alerts=Counter("uplift_alerts_total", "tier escalations raised", ["tier"],
                           registry=registry),
            events=Counter("uplift_events_total", "events received", ["outcome"],
                           registry=registry),
            webhooks=Counter("uplift_webhook_attempts_total", "webhook delivery attempts",
                             ["outcome"], registry=registry),
            model=model)

    def text(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self.registry)
