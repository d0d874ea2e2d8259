"""A session's recording: the citizen's consent first, then start and stop by the clerk.

The citizen (kiosk or mobile page) answers the consent question with
``consent.recording``; the answer is stored and audited before anything else happens,
and the clerk hears it. ``recording.start`` from the clerk then starts the media
endpoint's recorder against the latest consent, which must be a grant; a later refusal
(withdrawal) stops a running recording at once. Both participants hear every change
(``recording.state``), so the citizen's page can show that it is being recorded. Each
finished segment file is stored as a ``recordings`` row (:mod:`server.recordings`).

One lock orders consent, start and stop, so a withdrawal can never slip in between the
consent check and the recorder's start.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from media.endpoint import MediaEndpoint
from media.recorder import Segment
from server import audit, recordings
from server.errors import XiaowuError
from server.principals import Principal
from server.storage.database import Database
from signaling.queue_service import QueueService

logger = logging.getLogger(__name__)


class ConsentMissing(XiaowuError):
    code = "recording_consent_required"
    status = 409

    def __init__(self) -> None:
        super().__init__("群众尚未同意录像，不能开始录像",
                         "the citizen has not consented to recording")


class RecordingUnavailable(XiaowuError):
    code = "recording_unavailable"
    status = 409

    def __init__(self) -> None:
        super().__init__("本服务器不录像（媒体不经服务器）",
                         "this server does not record (media does not pass through it)")


class RecordingControl:
    def __init__(self, db: Database, queue: QueueService, media: MediaEndpoint | None,
                 root: Path) -> None:
        self.db = db
        self.queue = queue
        self.media = media
        self.root = root
        self._lock = asyncio.Lock()

    async def consent(self, participant: str, principal: Principal, session_id: str,
                      granted: bool, notice: str | None) -> dict[str, Any]:
        async with self._lock:
            other = await self.queue.party_of(participant, session_id)
            consent = await recordings.record_consent(
                self.db, session_id=session_id, participant=participant,
                role=principal.role, granted=granted, notice=notice)
            await self.queue.tell(other, "consent.recording", consent.public())
            if not granted and self.media is not None and self.media.recording(session_id):
                await self._stop(session_id, (participant, other), actor=principal,
                                 reason="consent_withdrawn")
            return consent.public()

    async def start(self, participant: str, principal: Principal,
                    session_id: str) -> dict[str, Any]:
        async with self._lock:
            other = await self.queue.party_of(participant, session_id)
            if self.media is None:
                raise RecordingUnavailable()
            consent = await recordings.current_consent(self.db, session_id)
            if consent is None or not consent.granted:
                raise ConsentMissing()
            await self.media.start_recording(session_id, consent_id=consent.id)
            await self._audit(principal, "recording.start", session_id,
                              {"consent_id": consent.id})
            state = {"session_id": session_id, "state": "recording",
                     "consent_id": consent.id}
            await self.queue.tell(other, "recording.state", state)
            return state

    async def stop(self, participant: str, principal: Principal,
                   session_id: str) -> dict[str, Any]:
        async with self._lock:
            other = await self.queue.party_of(participant, session_id)
            return await self._stop(session_id, (other,), actor=principal,
                                    reason="stopped_by_clerk")

    async def segment_done(self, segment: Segment) -> None:
        """The recorder finished a segment file: record it for the case file."""
        try:
            await recordings.store_segment(self.db, segment, self.root)
        except Exception:
            logger.exception("segment %s of session %s not recorded in the database",
                             segment.path, segment.session_id)
            raise

    async def _stop(self, session_id: str, tell: tuple[str, ...], *, actor: Principal,
                    reason: str) -> dict[str, Any]:
        if self.media is None or not self.media.recording(session_id):
            return {"session_id": session_id, "state": "stopped", "reason": "not_recording",
                    "segments": 0}
        segments = await self.media.stop_recording(session_id)
        await self._audit(actor, "recording.stop", session_id,
                          {"reason": reason, "segments": len(segments)})
        state = {"session_id": session_id, "state": "stopped", "reason": reason,
                 "segments": len(segments)}
        for party in tell:
            await self.queue.tell(party, "recording.state", state)
        return state

    async def _audit(self, principal: Principal, action: str, session_id: str,
                     detail: dict[str, Any]) -> None:
        async with self.db.begin() as conn:
            await audit.record(conn, actor=principal.subject, role=principal.role,
                               action=action, object_type="session", object_id=session_id,
                               outcome="success", detail=detail)
