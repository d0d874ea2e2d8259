"""One participant's peer connection with the server: the participant offers, we answer.

The answer is built from public aiortc API: one transceiver per offered media section,
created in offer order before ``setRemoteDescription`` (which then adopts them), with
codec preferences that leave only the session's codec. A section the participant
receives on gets its :class:`~media.forwarding.ForwardedTrack` now, even if the other
side has not joined, so the answer is ``sendrecv`` and forwarding starts by itself.
Unless ``lean_send`` is off, each such sender is a :class:`~media.lean_sender.LeanSender`
once negotiated (forwarded frames leave without aiortc's per-packet path); unless
``lean_receive`` is off, incoming RTP is handled in the datagram callback
(:mod:`media.lean_receive`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiortc import (
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpCodecCapability,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.exceptions import InternalError, InvalidAccessError, InvalidStateError, OperationError

from media.aiortc_internals import on_rtcp_feedback
from media.errors import DtlsFailed, IceFailed, InvalidSdp, MediaError, NoCommonCodec
from media.forwarding import ForwardedTrack
from media.lean_receive import receive_directly
from media.lean_sender import LeanSender
from media.offer import MediaSection, OfferSummary

logger = logging.getLogger(__name__)

OutgoingFactory = Callable[[str, int], ForwardedTrack]
IncomingHandler = Callable[[str, int, RTCRtpReceiver], None]


def _direction(section: MediaSection) -> str:
    if section.sends and section.receives:
        return "sendrecv"
    if section.sends:
        return "recvonly"
    if section.receives:
        return "sendonly"
    return "inactive"


def _preferences(kind: str, codec: str) -> list[RTCRtpCodecCapability]:
    capabilities = RTCRtpSender.getCapabilities(kind).codecs
    chosen = [c for c in capabilities if c.name == codec]
    rtx = [c for c in capabilities if c.name == "rtx"]
    return chosen + rtx


class ParticipantPeer:
    def __init__(
        self,
        role: str,
        configuration: RTCConfiguration,
        on_ended: Callable[[ParticipantPeer, MediaError | None], Awaitable[None]],
        *,
        lean_send: bool = True,
        lean_receive: bool = True,
    ) -> None:
        self.role = role
        self.lean_send = lean_send
        self.lean_receive = lean_receive
        self.lean_senders: list[LeanSender] = []
        self.pc = RTCPeerConnection(configuration)
        self.failure: MediaError | None = None
        self.outgoing: list[ForwardedTrack] = []
        self.incoming: list[RTCRtpReceiver] = []
        self._on_ended = on_ended
        self._state = "new"
        self._closing = False
        self.pc.on("connectionstatechange", self._connection_state_changed)

    async def answer(
        self,
        offer: OfferSummary,
        codecs: dict[str, str],
        outgoing: OutgoingFactory,
        on_incoming: IncomingHandler,
    ) -> str:
        """Negotiate; on any error the peer connection is closed and a MediaError raised."""
        try:
            counters = {"audio": [0, 0], "video": [0, 0]}
            for section in offer.sections:
                sent, received = counters[section.kind]
                direction = _direction(section)
                track = outgoing(section.kind, received) if section.receives else None
                transceiver: RTCRtpTransceiver = self.pc.addTransceiver(
                    track or section.kind, direction=direction
                )
                transceiver.setCodecPreferences(_preferences(section.kind, codecs[section.kind]))
                if track is not None:
                    self.outgoing.append(track)
                    on_rtcp_feedback(transceiver.sender, track.keyframe_requested,
                                     track.remb_received)
                    if self.lean_send:
                        self.lean_senders.append(LeanSender(transceiver.sender, track))
                if section.sends:
                    self.incoming.append(transceiver.receiver)
                    on_incoming(section.kind, sent, transceiver.receiver)
                counters[section.kind] = [sent + section.sends, received + section.receives]
            await self.pc.setRemoteDescription(RTCSessionDescription(offer.sdp, "offer"))
            await self.pc.setLocalDescription(await self.pc.createAnswer())
            if self.lean_receive:
                transports = {id(t.receiver.transport): t.receiver.transport
                              for t in self.pc.getTransceivers()}
                for transport in transports.values():
                    receive_directly(transport)
        except OperationError as exc:
            await self.close()
            kind = "video" if "video" in str(exc) else "audio"
            raise NoCommonCodec(kind, offer.offered(kind), [codecs.get(kind, "?")]) from exc
        except (ValueError, KeyError, InternalError, InvalidAccessError,
                InvalidStateError) as exc:
            await self.close()
            raise InvalidSdp(str(exc) or type(exc).__name__) from exc
        except BaseException:
            await self.close()
            raise
        return str(self.pc.localDescription.sdp)

    async def close(self) -> None:
        self._closing = True
        for track in self.outgoing:
            track.stop()
        await self.pc.close()

    async def _connection_state_changed(self) -> None:
        state = self.pc.connectionState
        if state == self._state:
            return
        logger.info("%s peer: %s -> %s", self.role, self._state, state)
        self._state = state
        if self._closing:
            return
        if state == "failed" and self.failure is None:
            ice_failed = self.pc.iceConnectionState == "failed"
            self.failure = IceFailed() if ice_failed else DtlsFailed()
            await self._on_ended(self, self.failure)
        elif state == "closed":
            await self._on_ended(self, None)
