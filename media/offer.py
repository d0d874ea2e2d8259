"""A participant's SDP offer, validated and summarised before any peer connection exists.

Rejecting here means a bad offer costs no sockets, tasks or threads. The summary says,
per media section in offer order, whether the participant sends and/or receives and
which codecs the server could negotiate on it; :func:`choose_codec` then applies the
session's rule that both legs use the same codec, because pass-through cannot convert.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiortc import sdp
from aiortc.codecs import CODECS
from aiortc.rtcpeerconnection import find_common_codecs

from media.errors import FingerprintMissing, InvalidSdp, NoCommonCodec, SdesNotSupported

MAX_OFFER_BYTES = 64 * 1024
FORWARDABLE = {"audio": ("opus",), "video": ("VP8", "H264")}


@dataclass(frozen=True, slots=True)
class MediaSection:
    mid: str | None
    kind: str
    sends: bool
    receives: bool
    codecs: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class OfferSummary:
    sdp: str
    sections: tuple[MediaSection, ...]

    def offered(self, kind: str) -> list[str]:
        names: list[str] = []
        for section in self.sections:
            if section.kind == kind:
                names.extend(c for c in section.codecs if c not in names)
        return names

    def kinds(self) -> set[str]:
        return {section.kind for section in self.sections}


def parse_offer(text: str) -> OfferSummary:
    """Validate an offer; raise an :class:`~media.errors.MediaError` naming what is wrong."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidSdp("empty offer")
    if len(text.encode()) > MAX_OFFER_BYTES:
        raise InvalidSdp(f"offer larger than {MAX_OFFER_BYTES} bytes")
    if not text.startswith("v=0"):
        raise InvalidSdp("offer does not start with v=0")
    try:
        description = sdp.SessionDescription.parse(text)
    except Exception as exc:  # aiortc's parser fails with asserts, ValueError, KeyError...
        raise InvalidSdp(f"cannot parse: {exc}") from exc
    has_crypto = any(line.startswith("a=crypto:") for line in text.splitlines())
    sections: list[MediaSection] = []
    for media in description.media:
        if media.kind not in FORWARDABLE:
            continue
        if media.dtls is None or not media.dtls.fingerprints:
            if has_crypto:
                raise SdesNotSupported()
            raise FingerprintMissing(media.rtp.muxId)
        if media.ice is None or not media.ice.usernameFragment or not media.ice.password:
            raise InvalidSdp(f"media section {media.rtp.muxId!r} has no ICE credentials")
        common = find_common_codecs(CODECS[media.kind], media.rtp.codecs)
        names = tuple(
            dict.fromkeys(
                c.name for c in common if c.name in FORWARDABLE[media.kind]
            )
        )
        direction = media.direction or "sendrecv"
        sections.append(
            MediaSection(
                mid=media.rtp.muxId,
                kind=media.kind,
                sends=direction in ("sendrecv", "sendonly"),
                receives=direction in ("sendrecv", "recvonly"),
                codecs=names,
            )
        )
    if not sections:
        raise InvalidSdp("offer has no audio or video section")
    return OfferSummary(sdp=text, sections=tuple(sections))


def choose_codec(
    kind: str, offer: OfferSummary, preference: tuple[str, ...], pinned: str | None
) -> str:
    """The codec for ``kind``: the session's pinned one, else the first preferred offered."""
    offered = offer.offered(kind)
    acceptable = [pinned] if pinned is not None else list(preference)
    for name in acceptable:
        if name in offered:
            return name
    raise NoCommonCodec(kind, offered, acceptable)
