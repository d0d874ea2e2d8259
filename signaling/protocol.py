"""Every client-to-server event and its payload schema (docs/protocol.md lists them).

Payloads are parsed into frozen pydantic models at the edge; anything else — a missing
field, an extra one, a wrong type, a non-object — becomes ``invalid_payload`` naming the
field, and an event the namespace does not know becomes ``unknown_event``. Handlers
only ever see validated values.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError

from server.errors import BadRequest, XiaowuError, invalid_payload

MAX_SDP = 48_000
Id = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")


class Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Empty(Payload):
    pass


class QueueJoin(Payload):
    matter: str = Id
    priority: Literal["normal", "priority"] = "normal"
    region: str | None = Field(None, pattern=r"^\d{6}(\d{6})?$")
    """Mobile only: the citizen's region code (a kiosk's region is its hut's)."""


class Resume(Payload):
    session_id: str | None = Field(None, min_length=1, max_length=64)
    ticket_id: str | None = Field(None, min_length=1, max_length=64)
    last_seq: int = Field(0, ge=0)


class PresenceSet(Payload):
    state: Literal["available", "break", "away"]


class OfferReply(Payload):
    offer_id: str = Id


class OfferDecline(Payload):
    offer_id: str = Id
    reason: str = Field("", max_length=200)


class SessionEnd(Payload):
    session_id: str = Id
    outcome: Literal["completed", "failed"] = "completed"
    reason: str = Field("", max_length=200)


class SessionRef(Payload):
    session_id: str = Id


class Description(Payload):
    session_id: str = Id
    type: Literal["offer", "answer"]
    sdp: str = Field(min_length=1, max_length=MAX_SDP)


class Restart(Payload):
    """An offer that replaces the sender's media leg after a network change (ICE restart)."""

    session_id: str = Id
    type: Literal["offer"] = "offer"
    sdp: str = Field(min_length=1, max_length=MAX_SDP)


class CaptureRequest(Payload):
    """The clerk asks the citizen's page for a full-resolution still of a checklist slot."""

    session_id: str = Id
    slot: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$")


class CaptureReply(Payload):
    """The citizen's page about a capture request: ``ok`` it is taking and uploading the
    still, or not (no camera still, a failed upload): the console then takes a snapshot."""

    session_id: str = Id
    request_id: str = Id
    ok: StrictBool


class RecordingConsent(Payload):
    """The citizen's answer to the recording question; ``notice`` names the text shown."""

    session_id: str = Id
    granted: StrictBool
    notice: str | None = Field(None, min_length=1, max_length=64,
                               pattern=r"^[A-Za-z0-9_.:-]+$")


class Candidate(Payload):
    session_id: str = Id
    candidate: str = Field(max_length=1024)
    sdpMid: str | None = Field(None, max_length=32)  # the browser's spelling
    sdpMLineIndex: int | None = Field(None, ge=0, le=64)


class MatterRef(Payload):
    matter: str = Id


class TicketMove(Payload):
    ticket_id: str = Id
    to: Literal["head", "tail"]


class TicketAssign(Payload):
    ticket_id: str = Id
    clerk: str = Field(min_length=1, max_length=64)


CITIZEN_EVENTS: dict[str, type[Payload]] = {
    "queue.join": QueueJoin,
    "queue.leave": Empty,
    "session.resume": Resume,
    "session.leave": SessionRef,
    "session.connected": SessionRef,
    "webrtc.offer": Description,
    "webrtc.answer": Description,
    "webrtc.candidate": Candidate,
    "webrtc.restart": Restart,
    "consent.recording": RecordingConsent,
    "capture.reply": CaptureReply,
}

CLERK_EVENTS: dict[str, type[Payload]] = {
    "presence.set": PresenceSet,
    "offer.accept": OfferReply,
    "offer.decline": OfferDecline,
    "session.resume": Resume,
    "session.connected": SessionRef,
    "session.end": SessionEnd,
    "wrapup.done": Empty,
    "queue.overview": Empty,
    "webrtc.offer": Description,
    "webrtc.answer": Description,
    "webrtc.candidate": Candidate,
    "webrtc.restart": Restart,
    "recording.start": SessionRef,
    "recording.stop": SessionRef,
    "capture.request": CaptureRequest,
}

SUPERVISOR_EVENTS: dict[str, type[Payload]] = {
    "queue.pause": MatterRef,
    "queue.resume": MatterRef,
    "ticket.move": TicketMove,
    "ticket.assign": TicketAssign,
    "dashboard": Empty,
}


def parse(events: dict[str, type[Payload]], event: str, data: Any) -> Payload:
    model = events.get(event)
    if model is None:
        raise BadRequest("不支持的操作", f"unknown event {event!r}", code="unknown_event")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise BadRequest("数据格式错误", "payload must be an object", code="invalid_payload",
                         detail={"field": "(payload)"})
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise invalid_payload(exc, "(payload)") from None


def error_ack(error: XiaowuError) -> dict[str, Any]:
    return {"error": error.to_dict()}
