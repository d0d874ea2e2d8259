"""What a case looks like on the wire, per audience. Pure.

Lists carry the masked identity number only; the single-case view gives the full number
to the clerk and the supervisor (they check it against the card) and the masked one to
the citizen side, which never sees the clerk's notes either. Socket events carry no
personal data beyond the case number.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from server.case_access import Standing
from server.case_records import CaseRecord, DocumentRecord, ImageRecord
from server.cases import SlotState, slot_view
from server.catalogue import KioskConfig
from server.identity_numbers import mask


def _at(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def matter_ref(config: KioskConfig, code: str) -> dict[str, str]:
    try:
        matter = config.matter(code)
    except KeyError:  # removed from the catalogue since: the case keeps its code
        return {"code": code, "name_zh": code, "name_en": code}
    return {"code": matter.code, "name_zh": matter.name_zh, "name_en": matter.name_en}


def case_summary(config: KioskConfig, case: CaseRecord) -> dict[str, Any]:
    """One line of a list: never the full identity number."""
    return {
        "case_id": case.id,
        "number": case.number,
        "status": str(case.status),
        "matter": matter_ref(config, case.matter),
        "applicant_name": case.applicant_name,
        "id_number": mask(case.id_number),
        "channel": case.channel,
        "hut_id": case.hut_id,
        "clerk": case.clerk,
        "session_id": case.session_id,
        "created_at": _at(case.created_at),
        "updated_at": _at(case.updated_at),
        "closed_at": _at(case.closed_at),
        "rating": case.rating,
    }


def case_detail(config: KioskConfig, case: CaseRecord, slots: Sequence[SlotState],
                documents: Sequence[DocumentRecord], standing: Standing,
                recordings: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    view = case_summary(config, case)
    staff = standing != "citizen"
    view.update({
        "id_number": case.id_number if staff else mask(case.id_number),
        "outcome": case.outcome,
        "rating_reason": case.rating_reason if staff else None,
        "rated_at": _at(case.rated_at),
        "checklist": [slot_view(s) for s in slots],
        "complete": not any(s.blocks_completion for s in slots),
        "documents": [document_view(case.id, d, locate(d, recordings)) for d in documents],
        "you": standing,
    })
    if staff:
        view["notes"] = case.notes
        view["department"] = case.department
    return view


def _image(case_id: str, document_id: str, variant: str, image: ImageRecord) -> dict[str, Any]:
    return {"sha256": image.sha256, "size": image.size, "content_type": image.content_type,
            "width": image.width, "height": image.height,
            "url": f"/api/cases/{case_id}/documents/{document_id}/{variant}"}


def document_view(case_id: str, document: DocumentRecord,
                  recording: dict[str, Any] | None = None) -> dict[str, Any]:
    """``recording``: where in the session's recording it was captured (see
    :func:`server.case_recordings.locate`), when known."""
    return {
        "document_id": document.id,
        "slot": document.slot,
        "path": document.path,
        "session_id": document.session_id,
        "clerk": document.clerk,
        "captured_at": _at(document.captured_at),
        "recording_offset_s": (document.recording_offset_s if recording is None
                               else recording["offset_s"]),
        "recording": recording,
        "original": _image(case_id, document.id, "original", document.original),
        "processed": _image(case_id, document.id, "processed", document.processed),
        "quality": document.quality,
    }


def document_event(case: CaseRecord, document: DocumentRecord) -> dict[str, Any]:
    """The ``case.document`` socket event: enough for a page to prompt a retake."""
    quality = document.quality
    return {
        "case_id": case.id,
        "number": case.number,
        "session_id": case.session_id,
        "document_id": document.id,
        "slot": document.slot,
        "path": document.path,
        "verdict": quality.get("verdict"),
        "prompts": quality.get("prompt_texts", []),
    }


def locate(document: DocumentRecord,
           recordings: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """``{recording_id, segment_index, offset_s}`` of the segment recording the session
    when ``document`` was captured, or None when nothing was being recorded."""
    for segment in recordings:
        if segment["session_id"] != document.session_id:
            continue
        start = datetime.fromisoformat(segment["started_at"])
        if start <= document.captured_at <= start + timedelta(seconds=segment["duration_s"]):
            return {"recording_id": segment["recording_id"],
                    "segment_index": segment["segment_index"],
                    "offset_s": round((document.captured_at - start).total_seconds(), 3)}
    return None
