"""The schema as SQLAlchemy Core tables, used by queries.

Migrations under ``migrations/versions`` create these tables; they are written out
explicitly there rather than derived from this module, so an old migration never changes
when this file does. ``tests/test_storage.py`` checks that the two agree.
"""

from __future__ import annotations

import sqlalchemy as sa

from server.storage.types import BigID, UTCDateTime

metadata = sa.MetaData()

clerks = sa.Table(
    "clerks",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("username", sa.String(64), nullable=False, unique=True),
    sa.Column("display_name", sa.String(128), nullable=False),
    sa.Column("password_hash", sa.String(255), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("department", sa.String(64), nullable=False),
    sa.Column("skills", sa.JSON, nullable=False),
    sa.Column("jurisdictions", sa.JSON, nullable=False),
    sa.Column("languages", sa.JSON, nullable=False),
    sa.Column("failed_logins", sa.Integer, nullable=False, server_default="0"),
    sa.Column("locked_until", UTCDateTime, nullable=True),
    sa.Column("must_change_password", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("password_changed_at", UTCDateTime, nullable=False),
)

web_sessions = sa.Table(
    "web_sessions",
    metadata,
    sa.Column("id_hash", sa.String(64), primary_key=True),
    sa.Column("clerk_id", sa.Integer, sa.ForeignKey("clerks.id"), nullable=False, index=True),
    sa.Column("csrf_token", sa.String(64), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("revoked_at", UTCDateTime, nullable=True),
    sa.Column("ip", sa.String(64), nullable=True),
    sa.Column("user_agent", sa.String(255), nullable=True),
)

kiosk_devices = sa.Table(
    "kiosk_devices",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("hut_id", sa.String(64), nullable=False, index=True),
    sa.Column("secret_hash", sa.String(64), nullable=False),
    sa.Column("provisioned_at", UTCDateTime, nullable=False),
    sa.Column("revoked_at", UTCDateTime, nullable=True),
    sa.Column("last_seen_at", UTCDateTime, nullable=True),
)

provisioning_codes = sa.Table(
    "provisioning_codes",
    metadata,
    sa.Column("code_hash", sa.String(64), primary_key=True),
    sa.Column("hut_id", sa.String(64), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("used_at", UTCDateTime, nullable=True),
    sa.Column("device_id", sa.String(32), nullable=True),
)

otp_challenges = sa.Table(
    "otp_challenges",
    metadata,
    sa.Column("id", BigID, primary_key=True, autoincrement=True),
    sa.Column("phone_hash", sa.String(64), nullable=False, index=True),
    sa.Column("code_hash", sa.String(64), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("used_at", UTCDateTime, nullable=True),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", BigID, primary_key=True, autoincrement=True),
    sa.Column("at", UTCDateTime, nullable=False, index=True),
    sa.Column("actor", sa.String(128), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("object_type", sa.String(32), nullable=False),
    sa.Column("object_id", sa.String(128), nullable=True),
    sa.Column("outcome", sa.String(32), nullable=False),
    sa.Column("ip", sa.String(64), nullable=True),
    sa.Column("detail", sa.JSON, nullable=True),
)

blobs = sa.Table(
    "blobs",
    metadata,
    sa.Column("sha256", sa.String(64), primary_key=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("content_type", sa.String(64), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

queue_tickets = sa.Table(
    "queue_tickets",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("matter", sa.String(64), nullable=False, index=True),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("hut_id", sa.String(64), nullable=True),
    sa.Column("region", sa.String(16), nullable=False),
    sa.Column("priority", sa.String(16), nullable=False),
    sa.Column("owner", sa.String(160), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False, index=True),
    sa.Column("closed_at", UTCDateTime, nullable=True),
    sa.Column("close_reason", sa.String(64), nullable=True),
)

service_sessions = sa.Table(
    "service_sessions",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("ticket_id", sa.String(32), nullable=False, index=True),
    sa.Column("clerk", sa.String(64), nullable=False, index=True),
    sa.Column("matter", sa.String(64), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("outcome", sa.String(16), nullable=True),
    sa.Column("end_reason", sa.String(64), nullable=True),
    sa.Column("offered_at", UTCDateTime, nullable=False, index=True),
    sa.Column("accepted_at", UTCDateTime, nullable=True),
    sa.Column("active_at", UTCDateTime, nullable=True),
    sa.Column("ended_at", UTCDateTime, nullable=True),
    sa.Column("wait_s", sa.Float, nullable=True),
    sa.Column("handle_s", sa.Float, nullable=True),
)

clerk_events = sa.Table(
    "clerk_events",
    metadata,
    sa.Column("id", BigID, primary_key=True, autoincrement=True),
    sa.Column("clerk", sa.String(64), nullable=False, index=True),
    sa.Column("old", sa.String(16), nullable=False),
    sa.Column("new", sa.String(16), nullable=False),
    sa.Column("reason", sa.String(64), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False, index=True),
)

case_counters = sa.Table(
    "case_counters",
    metadata,
    sa.Column("scope", sa.String(32), primary_key=True),
    sa.Column("last", sa.Integer, nullable=False),
)

CASE_STATUSES = ("draft", "in_progress", "completed", "rejected", "withdrawn")

cases = sa.Table(
    "cases",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("number", sa.String(32), nullable=False, unique=True),
    sa.Column("ticket_id", sa.String(32), nullable=False, unique=True),
    sa.Column("session_id", sa.String(32), nullable=False, index=True),
    sa.Column("matter", sa.String(64), nullable=False),
    sa.Column("department", sa.String(64), nullable=True, index=True),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("hut_id", sa.String(64), nullable=True),
    sa.Column("owner", sa.String(160), nullable=False, index=True),
    sa.Column("clerk", sa.String(64), nullable=False, index=True),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("applicant_name", sa.String(128), nullable=True),
    sa.Column("id_number", sa.String(18), nullable=True),
    sa.Column("notes", sa.Text, nullable=True),
    sa.Column("outcome", sa.Text, nullable=True),
    sa.Column("rating", sa.SmallInteger, nullable=True),
    sa.Column("rating_reason", sa.String(500), nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False, index=True),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("closed_at", UTCDateTime, nullable=True),
    sa.Column("rated_at", UTCDateTime, nullable=True),
    sa.Column("session_ended_at", UTCDateTime, nullable=True),
    sa.CheckConstraint("rating IS NULL OR (rating BETWEEN 1 AND 5)", name="ck_cases_rating"),
    sa.CheckConstraint(f"status IN {CASE_STATUSES}", name="ck_cases_status"),
)

case_slots = sa.Table(
    "case_slots",
    metadata,
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

case_documents = sa.Table(
    "case_documents",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("case_id", sa.String(32), sa.ForeignKey("cases.id"), nullable=False, index=True),
    sa.Column("slot", sa.String(64), nullable=False),
    sa.Column("path", sa.String(16), nullable=False),
    sa.Column("session_id", sa.String(32), nullable=True),
    sa.Column("clerk", sa.String(64), nullable=True),
    sa.Column("actor", sa.String(128), nullable=False),
    sa.Column("captured_at", UTCDateTime, nullable=False),
    sa.Column("recording_offset_s", sa.Float, nullable=True),
    sa.Column("original_sha256", sa.String(64), sa.ForeignKey("blobs.sha256"), nullable=False),
    sa.Column("original_size", sa.BigInteger, nullable=False),
    sa.Column("original_type", sa.String(32), nullable=False),
    sa.Column("original_width", sa.Integer, nullable=False),
    sa.Column("original_height", sa.Integer, nullable=False),
    sa.Column("processed_sha256", sa.String(64), sa.ForeignKey("blobs.sha256"), nullable=False),
    sa.Column("processed_size", sa.BigInteger, nullable=False),
    sa.Column("processed_type", sa.String(32), nullable=False),
    sa.Column("processed_width", sa.Integer, nullable=False),
    sa.Column("processed_height", sa.Integer, nullable=False),
    sa.Column("quality", sa.JSON, nullable=False),
    sa.ForeignKeyConstraint(["case_id", "slot"], ["case_slots.case_id", "case_slots.key"],
                            name="fk_case_documents_slot"),
    sa.CheckConstraint("path IN ('upload', 'snapshot')", name="ck_case_documents_path"),
)

case_upload_keys = sa.Table(
    "case_upload_keys",
    metadata,
    sa.Column("case_id", sa.String(32), sa.ForeignKey("cases.id"), primary_key=True),
    sa.Column("key", sa.String(128), primary_key=True),
    sa.Column("request_sha256", sa.String(64), nullable=False),
    sa.Column("document_id", sa.String(32), sa.ForeignKey("case_documents.id"),
              nullable=False),
    sa.Column("actor", sa.String(128), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

recording_consents = sa.Table(
    "recording_consents",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("session_id", sa.String(32), nullable=False, index=True),
    sa.Column("participant", sa.String(160), nullable=False),
    sa.Column("granted", sa.Boolean, nullable=False),
    sa.Column("notice", sa.String(64), nullable=True),
    sa.Column("at", UTCDateTime, nullable=False),
)

recordings = sa.Table(
    "recordings",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("session_id", sa.String(32), nullable=False, index=True),
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
