"""Case files: cases with their checklist slots, documents, upload idempotency keys, and
the per-year case number counters.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from server.storage.types import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_STATUSES = ("draft", "in_progress", "completed", "rejected", "withdrawn")


def upgrade() -> None:
    op.create_table(
        "case_counters",
        sa.Column("scope", sa.String(32), primary_key=True),
        sa.Column("last", sa.Integer, nullable=False),
    )
    op.create_table(
        "cases",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("number", sa.String(32), nullable=False, unique=True),
        sa.Column("ticket_id", sa.String(32), nullable=False, unique=True),
        sa.Column("session_id", sa.String(32), nullable=False),
        sa.Column("matter", sa.String(64), nullable=False),
        sa.Column("department", sa.String(64), nullable=True),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("hut_id", sa.String(64), nullable=True),
        sa.Column("owner", sa.String(160), nullable=False),
        sa.Column("clerk", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("applicant_name", sa.String(128), nullable=True),
        sa.Column("id_number", sa.String(18), nullable=True),
        sa.Column("notes", sa.Text, nullable=True),
        sa.Column("outcome", sa.Text, nullable=True),
        sa.Column("rating", sa.SmallInteger, nullable=True),
        sa.Column("rating_reason", sa.String(500), nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("closed_at", UTCDateTime, nullable=True),
        sa.Column("rated_at", UTCDateTime, nullable=True),
        sa.Column("session_ended_at", UTCDateTime, nullable=True),
        sa.CheckConstraint("rating IS NULL OR (rating BETWEEN 1 AND 5)",
                           name="ck_cases_rating"),
        sa.CheckConstraint(f"status IN {_STATUSES}", name="ck_cases_status"),
    )
    for column in ("session_id", "department", "owner", "clerk", "status", "created_at"):
        op.create_index(f"ix_cases_{column}", "cases", [column])
    op.create_table(
        "case_slots",
        sa.Column("case_id", sa.String(32), sa.ForeignKey("cases.id"), primary_key=True),
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("required", sa.Boolean, nullable=False),
        sa.Column("name_zh", sa.String(200), nullable=False),
        sa.Column("name_en", sa.String(300), nullable=False),
        sa.Column("aspect_ratio", sa.Float, nullable=True),
        sa.Column("waived_reason", sa.String(500), nullable=True),
        sa.Column("waived_by", sa.String(128), nullable=True),
        sa.Column("waived_at", UTCDateTime, nullable=True),
    )
    op.create_table(
        "case_documents",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("case_id", sa.String(32), sa.ForeignKey("cases.id"), nullable=False),
        sa.Column("slot", sa.String(64), nullable=False),
        sa.Column("path", sa.String(16), nullable=False),
        sa.Column("session_id", sa.String(32), nullable=True),
        sa.Column("clerk", sa.String(64), nullable=True),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("captured_at", UTCDateTime, nullable=False),
        sa.Column("recording_offset_s", sa.Float, nullable=True),
        sa.Column("original_sha256", sa.String(64), sa.ForeignKey("blobs.sha256"),
                  nullable=False),
        sa.Column("original_size", sa.BigInteger, nullable=False),
        sa.Column("original_type", sa.String(32), nullable=False),
        sa.Column("original_width", sa.Integer, nullable=False),
        sa.Column("original_height", sa.Integer, nullable=False),
        sa.Column("processed_sha256", sa.String(64), sa.ForeignKey("blobs.sha256"),
                  nullable=False),
        sa.Column("processed_size", sa.BigInteger, nullable=False),
        sa.Column("processed_type", sa.String(32), nullable=False),
        sa.Column("processed_width", sa.Integer, nullable=False),
        sa.Column("processed_height", sa.Integer, nullable=False),
        sa.Column("quality", sa.JSON, nullable=False),
        sa.ForeignKeyConstraint(["case_id", "slot"], ["case_slots.case_id", "case_slots.key"],
                                name="fk_case_documents_slot"),
        sa.CheckConstraint("path IN ('upload', 'snapshot')", name="ck_case_documents_path"),
    )
    op.create_index("ix_case_documents_case_id", "case_documents", ["case_id"])
    op.create_table(
        "case_upload_keys",
        sa.Column("case_id", sa.String(32), sa.ForeignKey("cases.id"), primary_key=True),
        sa.Column("key", sa.String(128), primary_key=True),
        sa.Column("request_sha256", sa.String(64), nullable=False),
        sa.Column("document_id", sa.String(32), sa.ForeignKey("case_documents.id"),
                  nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )


def downgrade() -> None:
    for table in ("case_upload_keys", "case_documents", "case_slots", "cases",
                  "case_counters"):
        op.drop_table(table)
