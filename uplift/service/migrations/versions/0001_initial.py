"""The first schema: customers, events, campaign log, scores, alerts, tokens, plans,
approvals, webhook deliveries.

Revision ID: 0001
Revises:
"""

from alembic import op

from uplift.service import schema

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# the first revision creates the tables as defined then; later revisions must spell out
# their changes with op.add_column / op.alter_column instead of reading schema.py
TABLES = ["customers", "events", "campaign_log", "scores", "alerts", "tokens", "plans",
          "approvals", "deliveries"]


def upgrade() -> None:
    bind = op.get_bind()
    for name in TABLES:
        schema.metadata.tables[name].create(bind)


def downgrade() -> None:
    bind = op.get_bind()
    for name in reversed(TABLES):
        schema.metadata.tables[name].drop(bind)
