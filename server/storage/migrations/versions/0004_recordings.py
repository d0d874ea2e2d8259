"""Recording consent and recorded segments.

A consent row is the citizen's answer (granted or refused) for one session, with the
time it was given; recording starts only against a granted one. A recordings row is
one finished segment file (remuxed, never re-encoded) with its SHA-256 and duration,
so the case file and its export can list them.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from server.storage.types import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "recording_consents",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("session_id", sa.String(32), nullable=False),
        sa.Column("participant", sa.String(160), nullable=False),
        sa.Column("granted", sa.Boolean, nullable=False),
        sa.Column("notice", sa.String(64), nullable=True),
        sa.Column("at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_recording_consents_session_id", "recording_consents", ["session_id"])
    op.create_table(
        "recordings",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("session_id", sa.String(32), nullable=False),
        sa.Column("consent_id", sa.String(32), sa.ForeignKey("recording_consents.id"),
                  nullable=False),
        sa.Column("segment_index", sa.Integer, nullable=False),
        sa.Column("path", sa.String(500), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("duration_s", sa.Float, nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("container", sa.String(16), nullable=False),
        sa.Column("codecs", sa.String(64), nullable=False),
        sa.Column("tracks", sa.JSON, nullable=False),
        sa.Column("started_at", UTCDateTime, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_recordings_session_id", "recordings", ["session_id"])


def downgrade() -> None:
    op.drop_table("recordings")
    op.drop_table("recording_consents")
