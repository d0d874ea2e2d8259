"""The relay bench's client peers (bench/relay_clients.py, bench/relay_lean.py): what
they count must stay honest while they get cheaper.

- A lean peer's counter reads sequence numbers, timestamps and marker bits from the
  clear RTP header and decrypts only what it needs (a video frame's first packet, one
  audio packet in ``AUDIO_CHECK_EVERY``): every frame is still identified, every packet
  counted, and a decrypted packet that fails authentication is refused and counted.
- Sampled peers that send like lean peers (``--sampled-send lean``) still receive
  through aiortc's whole path, and the bench's report matches what one side sent with
  what the other received, through the real relay.
- The pacer counts a datagram the kernel refused instead of raising, and its ticks are
  the loop-lag gauge.
- py-spy profiles of several client processes are read together.
"""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path

import pylibsrtp

from bench.relay_clients import AUDIO_CHECK_EVERY, PREFIX, Clients, PacketCounter
from bench.relay_lean import Pacer, packetise
from bench.relay_profile import top_frames
from media.endpoint import LocalMediaEndpoint
from media.synthetic import encode_audio, encode_video

VGA = encode_video("VP8", 45, 640, 480)  # 32-byte prefixes tell its frames apart
AUDIO = encode_audio(1.0)
SSRC = 0x1234ABCD
BOUND_S = 15.0


class Srtp:
    """A sending and a receiving SRTP session with one key, as two peers hold them."""

    def __init__(self) -> None:
        key = os.urandom(30)
        self.tx = pylibsrtp.Session(
            pylibsrtp.Policy(key=key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND))
        self.rx = pylibsrtp.Session(
            pylibsrtp.Policy(key=key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND))
        self.opened = 0
        self.failed = 0

    def open(self, data: bytes) -> bytes | None:
        try:
            plain = self.rx.unprotect(data)
        except pylibsrtp.Error:
            self.failed += 1
            return None
        self.opened += 1
        return plain


def rtp_stream(kind: str, frames: int, srtp: Srtp) -> list[list[bytes]]:
    """``frames`` frames of the clip as protected RTP packets, one list per frame; the
    header carries a one-byte header extension, as aiortc's does."""
    clip = (packetise("video", list(VGA.frames), 90_000, 1 / 30) if kind == "video"
            else packetise("audio", list(AUDIO.frames), 48_000, 0.02))
    payload_type = 96 if kind == "video" else 111
    extension = b"\xbe\xde\x00\x01" + b"\x10\x30\x00\x00"
    out, seq = [], 1000
    for n in range(frames):
        payloads = clip.frames[n % len(clip.frames)]
        packets = []
        for i, payload in enumerate(payloads):
            marker = 0x80 if i == len(payloads) - 1 else 0
            header = (bytes([0x90, marker | payload_type]) + seq.to_bytes(2, "big")
                      + (n * clip.ticks_per_frame).to_bytes(4, "big")
                      + SSRC.to_bytes(4, "big") + extension)
            packets.append(srtp.tx.protect(header + payload))
            seq += 1
        out.append(packets)
    return out


def prefix_index() -> dict[bytes, int]:
    index = {data[:PREFIX]: n for n, data in enumerate(VGA.frames)}
    assert len(index) == len(VGA.frames)
    return index


def test_video_is_counted_from_the_header_and_only_first_packets_are_decrypted() -> None:
    srtp = Srtp()
    frames = rtp_stream("video", 45, srtp)
    counter = PacketCounter("video", prefix_index())
    for packets in frames:
        for data in packets:
            counter.take_srtp(data, srtp.open)

    sent = sum(len(p) for p in frames)
    assert sent > 45  # frames of several packets: most are never decrypted
    assert [index for index, _ in counter.log] == list(range(45))
    assert counter.count == 45 and counter.unknown == 0
    assert counter.packets == counter.expected == sent
    assert srtp.opened == 45 and srtp.failed == 0


def test_a_frame_whose_first_packet_was_lost_is_counted_but_not_identified() -> None:
    srtp = Srtp()
    frames = rtp_stream("video", 12, srtp)
    lost = next(n for n, p in enumerate(frames) if len(p) >= 2 and n > 0)
    counter = PacketCounter("video", prefix_index())
    for n, packets in enumerate(frames):
        for data in packets[1:] if n == lost else packets:
            counter.take_srtp(data, srtp.open)

    assert counter.unknown == 1 and counter.count == 12
    assert lost not in [index for index, _ in counter.log]
    assert counter.expected - counter.packets == 1
    # the frame's remaining packets were decrypted in search of its start
    assert srtp.opened == 11 + len(frames[lost]) - 1


def test_a_tampered_packet_that_is_checked_is_refused_and_counted() -> None:
    srtp = Srtp()
    frames = rtp_stream("video", 3, srtp)
    first = bytearray(frames[1][0])
    first[-12] ^= 0x01  # in the encrypted payload: the authentication tag no longer fits
    frames[1][0] = bytes(first)
    counter = PacketCounter("video", prefix_index())
    for packets in frames:
        for data in packets:
            counter.take_srtp(data, srtp.open)

    assert srtp.failed >= 1
    assert counter.packets == sum(len(p) for p in frames) - 1
    assert 1 not in [index for index, _ in counter.log]


def test_audio_is_counted_from_the_header_with_one_packet_in_n_authenticated() -> None:
    srtp = Srtp()
    frames = rtp_stream("audio", 50, srtp)
    counter = PacketCounter("audio", {})
    for packets in frames:
        for data in packets:
            counter.take_srtp(data, srtp.open)

    assert counter.count == counter.packets == counter.expected == 50
    assert srtp.opened == -(-50 // AUDIO_CHECK_EVERY)
    assert srtp.failed == 0


async def test_the_pacer_counts_a_refused_datagram_and_measures_its_lag() -> None:
    pacer = Pacer()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sendto = pacer.sendto(sock)
        sock.close()
        sendto(b"x", ("127.0.0.1", 9))
        assert pacer.send_errors == 1
        assert not pacer.running and pacer.take_lag() == {"p99_ms": 0.0, "max_ms": 0.0}
    finally:
        pacer.stop()


async def test_sampled_peers_sending_lean_are_matched_through_the_relay(
    endpoint: LocalMediaEndpoint,
) -> None:
    """Two ``Clients`` hosts, as the bench's citizen and clerk processes: one sampled
    session whose peers send lean and receive through aiortc, one lean session."""
    video, audio = list(VGA.frames), list(AUDIO.frames)
    citizens = Clients(video, audio, decode=False, lean_send_sampled=True)
    clerks = Clients(video, audio, decode=False, lean_send_sampled=True)
    try:
        for n, sample in ((0, True), (1, False)):
            for role, side in (("citizen", citizens), ("clerk", clerks)):
                peer = f"s{n}/{role}"
                offer = await side.handle({"op": "offer", "id": peer, "sample": sample})
                answer = await endpoint.answer(f"s{n}", role, offer["sdp"])
                await side.handle({"op": "accept", "id": peer, "sdp": answer})
        for _ in range(int(BOUND_S / 0.1)):
            counts = {**(await citizens.handle({"op": "states"}))["counts"],
                      **(await clerks.handle({"op": "states"}))["counts"]}
            if all(counts[f"s{n}/{r}/video"] >= 40 for n in (0, 1)
                   for r in ("citizen", "clerk")):
                break
            await asyncio.sleep(0.1)
        state = await clerks.handle({"op": "states"})
        assert state["lag"]["max_ms"] >= 0.0 and citizens.pacer.running

        one, other = (await citizens.handle({"op": "report"}),
                      await clerks.handle({"op": "report"}))
        assert one["sampled"] == ["s0/citizen"] and other["sampled"] == ["s0/clerk"]
        for sent, received in ((one["sent"]["s0/citizen/video"],
                                other["received"]["s0/clerk/video"]),
                               (other["sent"]["s1/clerk/video"],
                                one["received"]["s1/citizen/video"])):
            got = [index for index, _ in received]
            indices = [index for index, _ in sent]
            assert len(got) >= 40 and got[0] == 0
            assert any(indices[i:i + len(got)] == got for i in range(len(indices)))
        assert one["unknown"] == other["unknown"] == 0
        srtp = one["srtp"]
        assert srtp["failed"] == 0 and 0 < srtp["opened"] < srtp["packets"]
    finally:
        await asyncio.gather(citizens.handle({"op": "close"}),
                             clerks.handle({"op": "close"}))


def test_profiles_of_several_processes_are_read_together(tmp_path: Path) -> None:
    one, two = tmp_path / "p.citizens0.raw", tmp_path / "p.clerks0.raw"
    one.write_text("main (a.py:1);send (b.py:2) 3\nmain (a.py:1);select (selectors.py:9) 50\n")
    two.write_text("main (a.py:1);recv (c.py:4) 1\n")

    lines = top_frames([one, two], 5)

    assert lines[0].endswith("send (b.py)") and "75.0 % own" in lines[0]
    assert lines[1].endswith("recv (c.py)") and "25.0 % own" in lines[1]
