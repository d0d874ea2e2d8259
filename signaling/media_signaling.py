"""How a session's ``webrtc.*`` events reach the media: the server's endpoint, or the
other participant.

With the server in the media path (the default), each participant negotiates with the
server: its offer is answered by the media endpoint and the answer goes back to it
alone. The endpoint does not trickle and needs none (its answer carries its candidates;
clients gather before they offer), so candidates sent to it are acknowledged and
dropped. ``webrtc.restart`` carries an ICE-restart offer after a network change: the
endpoint replaces that participant's leg (aiortc cannot restart ICE inside a
connection, so the answer has new ICE credentials and a new DTLS fingerprint) while
the other participant's leg keeps running untouched. In ``p2p`` mode, kept for
deployments that cannot carry media centrally (no recording, no stream snapshots
then), events are relayed to the other participant.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from server.errors import BadRequest, XiaowuError

NEGOTIATED_EVENTS = frozenset({"webrtc.offer", "webrtc.restart"})
"""The events that reach the media endpoint; the others are answered wherever they land."""


@dataclass(frozen=True, slots=True)
class MediaNode:
    """A node that can hold sessions' media: its id and the base URL clients reach it at."""

    id: str
    url: str

    def view(self) -> dict[str, str]:
        return {"id": self.id, "url": self.url}


Forward = Callable[[str, dict[str, Any]], Awaitable[bool]]
"""Send a message to the node with this id; False when no node of that id listens."""


class MediaNodeUnreachable(XiaowuError):
    code = "media_node_unreachable"
    status = 503

    def __init__(self, node_id: str) -> None:
        super().__init__("媒体节点不可达，请稍候", "the session's media node is unreachable",
                         detail={"node": node_id})


class AnsweringEndpoint(Protocol):
    """The part of ``media.endpoint.MediaEndpoint`` signaling needs."""

    async def answer(self, session_id: str, role: str, offer_sdp: str, *,
                     restart: bool = False) -> str: ...
    async def end(self, session_id: str) -> None: ...


def role_of(participant: str) -> str:
    return "clerk" if participant.startswith("clerk:") else "citizen"


async def negotiate(endpoint: AnsweringEndpoint, session_id: str, participant: str,
                    event: str, data: dict[str, Any]) -> dict[str, Any] | None:
    """Handle one ``webrtc.*`` event addressed to the server's media.

    Returns the ``webrtc.answer`` payload to send back to the participant, or None when
    nothing goes back.
    """
    if event == "webrtc.offer":
        sdp = await endpoint.answer(session_id, role_of(participant), str(data["sdp"]))
        return {"session_id": session_id, "type": "answer", "sdp": sdp, "from": "server"}
    if event == "webrtc.restart":
        sdp = await endpoint.answer(session_id, role_of(participant), str(data["sdp"]),
                                    restart=True)
        return {"session_id": session_id, "type": "answer", "sdp": sdp, "from": "server",
                "restart": True}
    if event == "webrtc.answer":
        raise BadRequest("服务器只接受 offer", "the server answers; send an offer",
                         code="unexpected_answer")
    return None  # candidates: the offer carried them
