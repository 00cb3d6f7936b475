"""The store's tables (SQLAlchemy Core). The Alembic migrations in ``migrations/versions``
create exactly these; ``tests/service/test_store.py`` checks that they agree."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

#: one row per customer known to the service (the customers contract; extra columns in attrs)
customers = Table(
    "customers", metadata,
    Column("customer_id", String(128), primary_key=True),
    Column("segment", String(64), nullable=False),
    Column("open_date", DateTime, nullable=False),
    Column("close_date", DateTime, nullable=True),
    Column("aum", Float, nullable=True),
    Column("products_held", Float, nullable=True),
    Column("attrs", JSON, nullable=False),
)

#: the event log (events contract); ``event_key`` is the client's event_id or a content hash
events = Table(
    "events", metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("event_key", String(128), nullable=False, unique=True),
    Column("customer_id", String(128), nullable=False, index=True),
    Column("ts", DateTime, nullable=False, index=True),
    Column("event_type", String(64), nullable=False),
    Column("amount", Float, nullable=False),
    Column("channel", String(64), nullable=True),
    Column("page", String(64), nullable=True),
    Column("topic", String(64), nullable=True),
    Column("received_at", DateTime, nullable=False),
)

#: past campaign rows (campaign features)
campaign_log = Table(
    "campaign_log", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("customer_id", String(128), nullable=False, index=True),
    Column("campaign_id", String(128), nullable=False),
    Column("arm", String(64), nullable=False),
    Column("assigned_at", DateTime, nullable=False),
    Column("churned", Integer, nullable=False),
)

#: the latest score of each customer
scores = Table(
    "scores", metadata,
    Column("customer_id", String(128), primary_key=True),
    Column("churn_risk", Float, nullable=False),
    Column("tier", String(32), nullable=False),
    Column("reasons", JSON, nullable=False),
    Column("exit_signal", String(128), nullable=False),
    Column("as_of", String(10), nullable=False),
    Column("model_version", String(64), nullable=False),
    Column("scored_at", DateTime, nullable=False),
    Column("last_seq", Integer, nullable=False),
    Column("features", JSON, nullable=False),
)

#: tier escalations
alerts = Table(
    "alerts", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("customer_id", String(128), nullable=False, index=True),
    Column("segment", String(64), nullable=False),
    Column("from_tier", String(32), nullable=False),
    Column("tier", String(32), nullable=False),
    Column("churn_risk", Float, nullable=False),
    Column("reasons", JSON, nullable=False),
    Column("as_of", String(10), nullable=False),
    Column("model_version", String(64), nullable=False),
    Column("created_at", DateTime, nullable=False, index=True),
    Column("event_seq", Integer, nullable=False),
    UniqueConstraint("customer_id", "event_seq", "tier", name="uq_alert_event"),
)

#: API tokens: only the SHA-256 of the secret is stored
tokens = Table(
    "tokens", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("role", String(32), nullable=False),
    Column("secret_sha256", String(64), nullable=False, unique=True),
    Column("created_at", DateTime, nullable=False),
    Column("revoked_at", DateTime, nullable=True),
)

#: plans run as background jobs
plans = Table(
    "plans", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("proposer", String(128), nullable=False),
    Column("budget", Float, nullable=False),
    Column("campaign", String(1024), nullable=True),
    Column("status", String(32), nullable=False),
    Column("summary", JSON, nullable=True),
    Column("error", Text, nullable=True),
    Column("folder", String(1024), nullable=True),
    Column("created_at", DateTime, nullable=False),
    Column("finished_at", DateTime, nullable=True),
)

approvals = Table(
    "approvals", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("plan_id", Integer, ForeignKey("plans.id"), nullable=False, unique=True),
    Column("approver", String(128), nullable=False),
    Column("approved_at", DateTime, nullable=False),
)

#: webhook deliveries of alerts (at least once: pending rows are retried until delivered)
deliveries = Table(
    "deliveries", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("alert_id", Integer, ForeignKey("alerts.id"), nullable=False, index=True),
    Column("url", String(1024), nullable=False),
    Column("status", String(16), nullable=False),       # pending | delivered
    Column("attempts", Integer, nullable=False),
    Column("last_error", Text, nullable=True),
    Column("next_attempt_at", DateTime, nullable=False),
    Column("delivered_at", DateTime, nullable=True),
)

#: campaign specs saved from the console, one row per version (revision 0002)
campaign_versions = Table(
    "campaign_versions", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False),
    Column("spec", JSON, nullable=False),
    Column("yaml", Text, nullable=False),
    Column("author", String(128), nullable=False),
    Column("created_at", DateTime, nullable=False),
)

#: alert tier thresholds, one row per version (revision 0002)
tier_versions = Table(
    "tier_versions", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("thresholds", JSON, nullable=False),
    Column("author", String(128), nullable=False),
    Column("created_at", DateTime, nullable=False),
)

#: what-if scenarios: a budget on a plan's precomputed curve (revision 0002)
scenarios = Table(
    "scenarios", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False),
    Column("plan_id", Integer, ForeignKey("plans.id"), nullable=False),
    Column("budget", Float, nullable=False),
    Column("result", JSON, nullable=False),
    Column("author", String(128), nullable=False),
    Column("created_at", DateTime, nullable=False),
)

#: plan reviews with a comment: approvals and rejections (revision 0002)
reviews = Table(
    "reviews", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("plan_id", Integer, ForeignKey("plans.id"), nullable=False, index=True),
    Column("reviewer", String(128), nullable=False),
    Column("decision", String(16), nullable=False),      # approved | rejected
    Column("comment", Text, nullable=False),
    Column("created_at", DateTime, nullable=False),
)
