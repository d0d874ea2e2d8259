"""A case and its documents as values: what the store reads and the rules and views take."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from server.cases import CaseStatus


@dataclass(frozen=True)
class CaseRecord:
    id: str
    number: str
    ticket_id: str
    session_id: str
    matter: str
    department: str | None
    """The serving clerk's department: a supervisor sees their own clerks' cases."""
    channel: str
    hut_id: str | None
    owner: str
    """The citizen side's participant key: ``citizen:<sub>`` or ``kiosk:<device id>``."""
    clerk: str
    """Username of the clerk of the case's current session."""
    status: CaseStatus
    applicant_name: str | None
    id_number: str | None
    notes: str | None
    outcome: str | None
    rating: int | None
    rating_reason: str | None
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    rated_at: datetime | None
    session_ended_at: datetime | None

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> CaseRecord:
        values = {name: row[name] for name in cls.__dataclass_fields__}
        values["status"] = CaseStatus(values["status"])
        return cls(**values)

    @property
    def clerk_key(self) -> str:
        return f"clerk:{self.clerk}"


@dataclass(frozen=True)
class ImageRecord:
    sha256: str
    size: int
    content_type: str
    width: int
    height: int

    @property
    def extension(self) -> str:
        return "png" if self.content_type == "image/png" else "jpg"


@dataclass(frozen=True)
class DocumentRecord:
    id: str
    case_id: str
    slot: str
    path: str
    """``upload`` (from a page) or ``snapshot`` (a frame of the live stream)."""
    session_id: str | None
    clerk: str | None
    actor: str
    captured_at: datetime
    recording_offset_s: float | None
    original: ImageRecord
    processed: ImageRecord
    quality: dict[str, Any]

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> DocumentRecord:
        def image(prefix: str) -> ImageRecord:
            return ImageRecord(row[f"{prefix}_sha256"], row[f"{prefix}_size"],
                               row[f"{prefix}_type"], row[f"{prefix}_width"],
                               row[f"{prefix}_height"])

        return cls(id=row["id"], case_id=row["case_id"], slot=row["slot"], path=row["path"],
                   session_id=row["session_id"], clerk=row["clerk"], actor=row["actor"],
                   captured_at=row["captured_at"],
                   recording_offset_s=row["recording_offset_s"],
                   original=image("original"), processed=image("processed"),
                   quality=row["quality"])

    @property
    def verdict(self) -> str:
        return str(self.quality.get("verdict", "retake"))
