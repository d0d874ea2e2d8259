"""The media of one session: a peer connection per participant, encoded pass-through between.

Each participant negotiates one peer connection with the server (the participant
offers, the server answers). Every audio/video track a participant sends is a
:class:`~media.forwarding.Source` slot ``(role, kind, index)``; the other participant's
``index``-th receiving section of that kind carries it back out, re-packetised but never
decoded. Both legs use one codec per kind: the first participant to connect pins it
(first of ``RelaySettings.video_codecs`` they offer) and the other must offer it, or
gets ``no_common_codec``.

A failed leg (ICE or DTLS, e.g. a tampered fingerprint) is closed and reported through
``on_failure``; a leg the participant closed is dropped quietly. In both cases its
slots stay, so a reconnect (a new offer for the same role) resumes
forwarding and the other side's tracks continue without renegotiation.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from aiortc import RTCConfiguration, RTCIceServer, RTCRtpReceiver

from media.errors import MediaError
from media.forwarding import BitratePolicy, ForwardedTrack, Source, SourceKey
from media.offer import choose_codec, parse_offer
from media.peers import ParticipantPeer
from media.snapshot import SnapshotFailed, snapshot

logger = logging.getLogger(__name__)

FailureHandler = Callable[[str, MediaError], Awaitable[None] | None]


@dataclass(frozen=True, slots=True)
class RelaySettings:
    """``ice_servers`` is always passed as a list, empty by default: with ``None`` aiortc
    would fall back to a public STUN server."""

    ice_servers: tuple[RTCIceServer, ...] = ()
    video_codecs: tuple[str, ...] = ("VP8", "H264")
    bitrate: BitratePolicy = field(default_factory=BitratePolicy)
    max_sessions: int | None = None
    """Sessions one process takes before refusing new ones (``media_busy``); None: no
    limit. See docs/operations.md for the measured cost per session."""
    lean_send: bool = True
    """Forwarded frames leave through :mod:`media.lean_sender` (VP8, H.264, Opus);
    False: through aiortc's ``RTCRtpSender`` (for A/B comparison)."""
    lean_receive: bool = True
    """Incoming RTP is handled in the datagram callback (:mod:`media.lean_receive`);
    False: through aioice's queue and the DTLS transport's task (for A/B comparison)."""


class RelaySession:
    def __init__(
        self,
        session_id: str,
        roles: tuple[str, str] = ("citizen", "clerk"),
        settings: RelaySettings | None = None,
        on_failure: FailureHandler | None = None,
    ) -> None:
        self.session_id = session_id
        self.roles = roles
        self.settings = settings or RelaySettings()
        self.codecs: dict[str, str] = {}
        self._on_failure = on_failure
        self._peers: dict[str, ParticipantPeer] = {}
        self._sources: dict[SourceKey, Source] = {}
        self._watchers: list[Callable[[Source], None]] = []
        self._lock = asyncio.Lock()
        self._closed = False

    def peer(self, role: str) -> ParticipantPeer | None:
        return self._peers.get(role)

    def watch_sources(self, watcher: Callable[[Source], None]) -> Callable[[], None]:
        """Call ``watcher`` with every source now and with each new one (the recorder);
        returns the function that stops watching."""
        self._watchers.append(watcher)
        for source in list(self._sources.values()):
            watcher(source)

        def unwatch() -> None:
            if watcher in self._watchers:
                self._watchers.remove(watcher)

        return unwatch

    async def connect(self, role: str, offer_sdp: str, *, restart: bool = False) -> str:
        """Answer ``role``'s offer (first join, reconnect, or ICE restart) and return the
        answer SDP. The role's previous leg, if any, is closed first: aiortc cannot restart
        ICE within a connection, so a restart is a new leg with new ICE credentials and
        DTLS certificate, which browsers take as an ICE and DTLS restart of their own
        connection. The sources stay, so the other participant's leg is not touched."""
        if role not in self.roles:
            raise ValueError(f"role {role!r} is not one of {self.roles}")
        offer = parse_offer(offer_sdp)
        async with self._lock:
            if self._closed:
                raise MediaError(
                    "媒体会话已结束", f"media session {self.session_id} is closed",
                    code="media_session_closed", status=409,
                )
            codecs = {
                kind: choose_codec(
                    kind, offer, self._preference(kind), self.codecs.get(kind)
                )
                for kind in sorted(offer.kinds())
            }
            if restart:
                logger.info("session %s: %s restarts ICE (had a leg: %s)", self.session_id,
                            role, role in self._peers)
            await self._drop_peer(role)
            peer = ParticipantPeer(
                role,
                RTCConfiguration(iceServers=list(self.settings.ice_servers)),
                self._peer_ended,
                lean_send=self.settings.lean_send,
                lean_receive=self.settings.lean_receive,
            )
            other = self._other(role)
            try:
                answer = await peer.answer(
                    offer,
                    codecs,
                    outgoing=lambda kind, index: ForwardedTrack(self._source((other, kind, index))),
                    on_incoming=lambda kind, index, receiver: self._attach(
                        (role, kind, index), receiver
                    ),
                )
            except BaseException:
                self._detach_all(peer)
                raise
            self._peers[role] = peer
            self.codecs.update(codecs)
            logger.info("session %s: %s connected with %s", self.session_id, role, codecs)
            return answer

    async def snapshot(
        self, role: str, index: int = 0, within_s: float = 1.0
    ) -> npt.NDArray[np.uint8]:
        """A BGR image of ``role``'s ``index``-th video track, from a fresh keyframe."""
        source = self._sources.get((role, "video", index))
        if source is None:
            raise SnapshotFailed(f"{role} has no video track {index}")
        return await snapshot(source, within_s)

    async def disconnect(self, role: str) -> None:
        async with self._lock:
            await self._drop_peer(role)

    async def close(self) -> None:
        async with self._lock:
            self._closed = True
            await asyncio.gather(*(self._drop_peer(role) for role in list(self._peers)))
            self._sources.clear()

    def _preference(self, kind: str) -> tuple[str, ...]:
        return self.settings.video_codecs if kind == "video" else ("opus",)

    def _other(self, role: str) -> str:
        return self.roles[1] if role == self.roles[0] else self.roles[0]

    def _source(self, key: SourceKey) -> Source:
        source = self._sources.get(key)
        if source is None:
            source = self._sources[key] = Source(key, self.settings.bitrate)
            for watcher in list(self._watchers):
                watcher(source)
        return source

    def _attach(self, key: SourceKey, receiver: RTCRtpReceiver) -> None:
        self._source(key).attach(receiver)

    async def _drop_peer(self, role: str) -> None:
        peer = self._peers.pop(role, None)
        if peer is None:
            return
        self._detach_all(peer)
        await peer.close()

    def _detach_all(self, peer: ParticipantPeer) -> None:
        for receiver in peer.incoming:
            for source in self._sources.values():
                source.detach(receiver)

    async def _peer_ended(self, peer: ParticipantPeer, error: MediaError | None) -> None:
        """The leg failed (ICE, DTLS) or the participant closed it."""
        if error is None:
            logger.info("session %s: %s closed its connection", self.session_id, peer.role)
        else:
            logger.warning("session %s: %s failed: %s", self.session_id, peer.role, error.code)
        async with self._lock:
            if self._peers.get(peer.role) is peer:
                await self._drop_peer(peer.role)
        if error is not None and self._on_failure is not None:
            result = self._on_failure(peer.role, error)
            if result is not None:
                await result
