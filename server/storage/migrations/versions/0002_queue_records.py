"""Queue records: tickets, sessions (offers included), clerk presence changes.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from server.storage.types import BigID, UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "queue_tickets",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("matter", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("hut_id", sa.String(64), nullable=True),
        sa.Column("region", sa.String(16), nullable=False),
        sa.Column("priority", sa.String(16), nullable=False),
        sa.Column("owner", sa.String(160), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("closed_at", UTCDateTime, nullable=True),
        sa.Column("close_reason", sa.String(64), nullable=True),
    )
    op.create_index("ix_queue_tickets_matter", "queue_tickets", ["matter"])
    op.create_index("ix_queue_tickets_created_at", "queue_tickets", ["created_at"])
    op.create_table(
        "service_sessions",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("ticket_id", sa.String(32), nullable=False),
        sa.Column("clerk", sa.String(64), nullable=False),
        sa.Column("matter", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.Column("end_reason", sa.String(64), nullable=True),
        sa.Column("offered_at", UTCDateTime, nullable=False),
        sa.Column("accepted_at", UTCDateTime, nullable=True),
        sa.Column("active_at", UTCDateTime, nullable=True),
        sa.Column("ended_at", UTCDateTime, nullable=True),
        sa.Column("wait_s", sa.Float, nullable=True),
        sa.Column("handle_s", sa.Float, nullable=True),
    )
    op.create_index("ix_service_sessions_ticket_id", "service_sessions", ["ticket_id"])
    op.create_index("ix_service_sessions_clerk", "service_sessions", ["clerk"])
    op.create_index("ix_service_sessions_offered_at", "service_sessions", ["offered_at"])
    op.create_table(
        "clerk_events",
        sa.Column("id", BigID, primary_key=True, autoincrement=True),
        sa.Column("clerk", sa.String(64), nullable=False),
        sa.Column("old", sa.String(16), nullable=False),
        sa.Column("new", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_clerk_events_clerk", "clerk_events", ["clerk"])
    op.create_index("ix_clerk_events_at", "clerk_events", ["at"])


def downgrade() -> None:
    for table in ("clerk_events", "service_sessions", "queue_tickets"):
        op.drop_table(table)
