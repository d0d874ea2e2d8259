"""Offer validation and the one-codec-per-session rule, on SDP text only."""

from __future__ import annotations

import pytest

from media.errors import MediaError
from media.forwarding import BitratePolicy
from media.offer import choose_codec, parse_offer

FINGERPRINT = "a=fingerprint:sha-256 " + ":".join(["AB"] * 32) + "\r\n"


def offer(
    video: str = "VP8 H264", video_direction: str = "sendrecv", fingerprint: str = FINGERPRINT,
    extra: str = "",
) -> str:
    rtpmap = {"VP8": "a=rtpmap:96 VP8/90000\r\n",
              "H264": "a=rtpmap:102 H264/90000\r\n"
                      "a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;"
                      "profile-level-id=42e01f\r\n",
              "H264-mode0": "a=rtpmap:104 H264/90000\r\n"
                            "a=fmtp:104 packetization-mode=0;profile-level-id=42e01f\r\n",
              "AV1": "a=rtpmap:45 AV1/90000\r\n"}
    payload_types = {"VP8": "96", "H264": "102", "H264-mode0": "104", "AV1": "45"}
    names = video.split()
    ice = "a=ice-ufrag:abcd\r\na=ice-pwd:" + "p" * 22 + "\r\n"
    common = ice + fingerprint + "a=setup:actpass\r\n"
    return (
        "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n"
        "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendrecv\r\n"
        "a=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\n" + common + extra
        + f"m=video 9 UDP/TLS/RTP/SAVPF {' '.join(payload_types[n] for n in names)}\r\n"
        "c=IN IP4 0.0.0.0\r\na=mid:1\r\n" + f"a={video_direction}\r\na=rtcp-mux\r\n"
        + "".join(rtpmap[n] for n in names) + common + extra
    )


def test_a_good_offer_is_summarised_per_section() -> None:
    summary = parse_offer(offer(video_direction="sendonly"))
    assert [(s.mid, s.kind, s.sends, s.receives) for s in summary.sections] == [
        ("0", "audio", True, True), ("1", "video", True, False),
    ]
    assert summary.offered("video") == ["VP8", "H264"]
    assert summary.offered("audio") == ["opus"]


def test_h264_without_packetization_mode_1_and_unknown_codecs_are_not_forwardable() -> None:
    assert parse_offer(offer(video="H264-mode0 AV1")).offered("video") == []


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("", "invalid_sdp"),
        ("hello", "invalid_sdp"),
        ("v=0\r\nm=video notaport\r\n", "invalid_sdp"),
        ("v=0\r\n" + "a=x\r\n" * 20000, "invalid_sdp"),
        (offer(fingerprint=""), "dtls_fingerprint_missing"),
        (offer(fingerprint="", extra="a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + "A" * 40
               + "\r\n"), "sdes_not_supported"),
        (offer().replace("a=ice-pwd:" + "p" * 22 + "\r\n", ""), "invalid_sdp"),
    ],
)
def test_bad_offers_name_their_problem(text: str, code: str) -> None:
    with pytest.raises(MediaError) as caught:
        parse_offer(text)
    assert caught.value.code == code


def test_the_first_preferred_codec_is_chosen_and_a_pinned_codec_must_be_offered() -> None:
    both = parse_offer(offer(video="H264 VP8"))
    assert choose_codec("video", both, ("VP8", "H264"), None) == "VP8"
    assert choose_codec("video", both, ("VP8", "H264"), "H264") == "H264"
    with pytest.raises(MediaError) as caught:
        choose_codec("video", parse_offer(offer(video="VP8")), ("VP8", "H264"), "H264")
    assert caught.value.code == "no_common_codec"
    assert caught.value.detail == {"kind": "video", "offered": ["VP8"], "acceptable": ["H264"]}


def test_upstream_bitrate_is_floored_but_capped_by_the_slowest_receiver() -> None:
    policy = BitratePolicy(floor_bps=600_000)
    assert policy.apply(80_000, []) == 600_000
    assert policy.apply(1_500_000, []) == 1_500_000
    assert policy.apply(1_500_000, [900_000, 250_000]) == 250_000
