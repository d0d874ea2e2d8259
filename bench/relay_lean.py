"""Lean client peers for the relay bench: pre-packetised RTP, one timer per process.

A client peer that sends through aiortc's ``RTCRtpSender`` does per packet what a server
leg does (packetisation, an ``RtpPacket`` with header extensions, serialisation, SRTP,
three coroutine layers down to ``sendto``), so 30 sessions' clients needed about as
many cores as the server under test. A lean peer stays a real peer: aiortc still does
the offer/answer, ICE and DTLS with the real server, so SRTP keys are negotiated for
real, and aiortc's sender still registers the stream (RTCP routing), sends sender
reports and parses incoming RTCP. Only the RTP path is replaced:

- each frame of the clip is packetised once, at start (aiortc's own packetiser);
- a stream's header is built once from the negotiated parameters (payload type, SSRC,
  header extensions: mid and abs-send-time, as aiortc sends them); per frame the
  timestamp and abs-send-time are written into it, per packet the sequence number and
  the marker bit; each packet is protected with the negotiated SRTP context and
  written with one ``sendto`` on (a duplicate of) the nominated ICE pair's socket,
  without asyncio's transport layer;
- incoming RTP is handed, still protected, to a counter (:class:`IncomingTap`), which
  reads what it counts from the clear RTP header and decrypts (authentication checked)
  only the packets whose payload it needs; STUN, DTLS and RTCP go aiortc's normal way.

Wake-ups, not packets, were most of a client's cost: an idle asyncio loop woken 500
times a second used 3 % of a core here (30-60 us per wake-up on this VM), and a peer
woke its process about 200 times a second (a timer per frame per track, a read per
packet). So one :class:`Pacer` per process is the only timer its lean peers use: every
``TICK_S`` it asks ``epoll`` (one call, no wait) which of their sockets hold datagrams
(the loop no longer watches them), reads those, and sends every frame that is due; its
ticks' lateness is the process's loop-lag gauge, so no second timer runs. Frames leave
on that 5 ms grid, like a browser's pacer (WebRTC's paced sender also works in 5 ms
steps), and each frame's real send time is logged. Arrival times of lean peers are read
on the same grid, so their latencies are up to one tick high; the bench's latency
figure comes from the sampled sessions, which keep aiortc's whole path.

What the server needs from a sender is kept: the stream starts with the keyframe and
restarts at it on PLI/FIR (the relay forwards nothing downstream until a keyframe); a
NACK is answered with an RTX retransmission from a short history, as aiortc does; the
sender report carries this stream's packet and octet counts and RTP/NTP timestamps.
Picture ids in the VP8 payload descriptor are the clip's frame numbers, not a running
count: the server depayloads and re-packetises, so they never reach the far side.

The private aiortc names used here (bench only; the product's live in
``media/aiortc_internals.py``) are checked by :func:`check_internals` before a run.
"""

from __future__ import annotations

import asyncio
import heapq
import inspect
import os
import random
import select
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av
import pylibsrtp
from aioice import Connection
from aiortc import MediaStreamTrack, RTCDtlsTransport, RTCIceTransport, RTCRtpSender
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcrtpparameters import RTCRtpSendParameters
from aiortc.rtp import RTP_HISTORY_SIZE

from media.aiortc_internals import on_rtcp_feedback
from media.rtp_wire import SR_FIELDS, TS_MOD, RtpWire, retransmit, send_frame, wire_for

Log = list[tuple[int, float]]
Open = Callable[[bytes], bytes | None]
TICK_S = 0.005
RECEIVE_BYTES = 2048
CLOSED_CHECK_TICKS = 100  # a polled transport closed by aiortc is noticed within 0.5 s

# aiortc 1.16 private names (see check_internals).
_SEND = "send"
_DATAGRAM_RECEIVED = "datagram_received"
_RETRANSMIT = "_retransmit"


def check_internals() -> None:
    """Fail loudly, naming what is missing, if aiortc changed under the lean sender."""
    assigned = {
        "RTCRtpSender": set(RTCRtpSender.__init__.__code__.co_names),
        "RTCDtlsTransport": set(RTCDtlsTransport.__init__.__code__.co_names),
        "RTCIceTransport": set(RTCIceTransport.__init__.__code__.co_names),
        "aioice.Connection": set(Connection.__init__.__code__.co_names),
    }
    wanted = [("RTCRtpSender", name) for name in ("_ssrc", "_rtx_ssrc", *SR_FIELDS)]
    wanted += [("RTCDtlsTransport", "_tx_srtp"), ("RTCDtlsTransport", "_rx_srtp"),
               ("RTCIceTransport", "_connection"),
               ("aioice.Connection", "_nominated")]
    missing = [f"{owner}.{name}" for owner, name in wanted if name not in assigned[owner]]
    if not inspect.iscoroutinefunction(getattr(RTCRtpSender, _RETRANSMIT, None)):
        missing.append(f"RTCRtpSender.{_RETRANSMIT} (coroutine)")
    if missing:
        raise RuntimeError(f"aiortc internals used by bench/relay_lean.py are gone: {missing}")


@dataclass(frozen=True, slots=True)
class PacketisedClip:
    """RTP payloads per clip frame; frame 0 is the only video keyframe."""

    kind: str
    frames: tuple[tuple[bytes, ...], ...]
    ticks_per_frame: int
    period: float


def packetise(kind: str, frames: list[bytes], clock_rate: int, period: float) -> PacketisedClip:
    """Packetise every frame once, as aiortc would (VP8 payload descriptor and
    fragmentation; an Opus packet is its own payload)."""
    payloads: list[tuple[bytes, ...]] = []
    if kind == "video":
        encoder = Vp8Encoder()
        encoder.picture_id = 0
        for data in frames:
            packet = av.Packet(data)
            packet.pts = 0
            packet.time_base = Fraction(1, clock_rate)
            packed, _ = encoder.pack(packet)
            payloads.append(tuple(packed))
    else:
        payloads = [(data,) for data in frames]
    return PacketisedClip(kind, tuple(payloads), round(clock_rate * period), period)


class DormantTrack(MediaStreamTrack):
    """The track aiortc's sender waits on: it never yields, so that sender sends no RTP."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    async def recv(self) -> Any:
        await asyncio.get_running_loop().create_future()
        raise MediaStreamError


class Pacer:
    """The one timer of a client process's lean peers (see the module docstring).

    Per tick: one ``epoll`` call (no timeout) says which polled sockets have datagrams,
    and only those are read; the streams wait in a heap by their next frame's time, so a
    tick touches only the streams that are due.
    """

    def __init__(self, tick_s: float = TICK_S) -> None:
        self.tick_s = tick_s
        self.send_errors = 0
        self.cpu_s = 0.0
        """CPU time spent in the ticks: the lean peers' own RTP work."""
        self._loop = asyncio.get_running_loop()
        self._due: list[tuple[float, int, LeanStream]] = []
        self._added = 0
        self._epoll = select.epoll()
        self._polled: dict[int, _Polled] = {}
        self._sockets: dict[asyncio.BaseTransport, socket.socket] = {}  # holds the transport
        self._handle: asyncio.TimerHandle | None = None
        self._origin = 0.0
        self._ticks = 0
        self._lags: list[float] = []

    @property
    def running(self) -> bool:
        return self._handle is not None

    def take_lag(self) -> dict[str, float]:
        """How late the ticks ran since the last call, in ms (p99 and max): the same
        gauge as ``bench.loop_lag.LoopLag``, from a timer that runs anyway."""
        lags, self._lags = sorted(self._lags), []
        if not lags:
            return {"p99_ms": 0.0, "max_ms": 0.0}
        return {"p99_ms": round(1000 * lags[int(0.99 * (len(lags) - 1))], 1),
                "max_ms": round(1000 * lags[-1], 1)}

    def add(self, stream: LeanStream, at: float) -> None:
        heapq.heappush(self._due, (at, self._added, stream))
        self._added += 1
        self._run()

    def socket_of(self, transport: asyncio.BaseTransport) -> socket.socket:
        """A non-blocking duplicate of ``transport``'s socket (one per transport), to send
        and read on without asyncio's transport layer."""
        sock = self._sockets.get(transport)
        if sock is None:
            fd = transport.get_extra_info("socket").fileno()
            sock = socket.socket(fileno=os.dup(fd))
            sock.setblocking(False)
            self._sockets[transport] = sock
        return sock

    def poll(self, transport: asyncio.BaseTransport,
             handler: Callable[[bytes, tuple[Any, ...]], None]) -> None:
        """Read ``transport``'s socket on each tick and hand each datagram to ``handler``,
        instead of the loop waking up for every datagram."""
        transport.pause_reading()  # type: ignore[attr-defined]  # asyncio's UDP transport has it
        sock = self.socket_of(transport)
        self._polled[sock.fileno()] = _Polled(sock, transport, handler)
        self._epoll.register(sock.fileno(), select.EPOLLIN)
        self._run()

    def sendto(self, sock: socket.socket) -> Callable[[bytes, tuple[str, int]], None]:
        """``sock.sendto`` that counts, instead of raising, a datagram the kernel refused
        (full send buffer, closed socket): the loss then shows at the receiver."""
        send = sock.sendto

        def sendto(data: bytes, address: tuple[str, int]) -> None:
            try:
                send(data, address)
            except OSError:
                self.send_errors += 1

        return sendto

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._epoll.close()
        for sock in self._sockets.values():
            sock.close()
        self._sockets.clear()
        self._polled.clear()
        self._due.clear()

    def _run(self) -> None:
        if self._handle is None:
            self._origin = self._loop.time()
            self._ticks = 0
            self._tick()

    def _tick(self) -> None:
        began = time.thread_time()
        self._lags.append(self._loop.time() - self._origin - self._ticks * self.tick_s)
        for fd, _ in self._epoll.poll(0):
            polled = self._polled.get(fd)
            if polled is not None and not self._drain(polled):
                self._forget(fd)
        if self._ticks % CLOSED_CHECK_TICKS == 0:
            for fd in [fd for fd, p in self._polled.items() if p.transport.is_closing()]:
                self._forget(fd)
        now = time.monotonic()
        due = self._due
        while due and due[0][0] <= now:
            _, n, stream = heapq.heappop(due)
            at = stream.send_due(now)
            if at is not None:
                heapq.heappush(due, (at, n, stream))
        self._ticks = max(self._ticks + 1, int((now - self._origin) / self.tick_s) + 1)
        self._handle = self._loop.call_at(self._origin + self._ticks * self.tick_s, self._tick)
        self.cpu_s += time.thread_time() - began

    def _forget(self, fd: int) -> None:
        polled = self._polled.pop(fd)
        self._epoll.unregister(fd)
        self._sockets.pop(polled.transport, None)
        polled.sock.close()

    @staticmethod
    def _drain(polled: _Polled) -> bool:
        """Read all that is queued; False once the socket is closed."""
        if polled.transport.is_closing():
            return False
        recvfrom, handler = polled.sock.recvfrom, polled.handler
        while True:
            try:
                data, address = recvfrom(RECEIVE_BYTES)
            except BlockingIOError:
                return True
            except OSError:
                return False
            handler(data, address)


@dataclass(slots=True)
class _Polled:
    sock: socket.socket
    transport: asyncio.BaseTransport
    handler: Callable[[bytes, tuple[Any, ...]], None]


class IncomingTap:
    """Takes a lean peer's incoming RTP off its socket, before aioice's queue and
    aiortc's DTLS task: each datagram that is RTP (not STUN, DTLS or RTCP) goes, still
    protected, to the sink for its payload type, with :meth:`open` to decrypt it (and
    check its authentication tag) when the sink needs the payload; the rest goes on to
    aioice. With a :class:`Pacer`, the socket is read on the pacer's ticks. One per peer
    connection (its media is bundled on one transport).

    SRTP encrypts the payload only: version, marker, payload type, sequence number,
    timestamp and SSRC are in the clear, so a counter needs no decryption for them.
    libsrtp accepts packets skipped over (its replay window only refuses repeats and
    packets more than 128 behind the newest it has seen), so decrypting some of a
    stream's packets is valid.

    The sink for a kind is registered under the payload type this peer sends that kind
    with: aiortc's answer keeps the offer's payload types, so the server sends with the
    same ones.
    """

    def __init__(self, sinks: dict[str, Callable[[bytes, Open], None]],
                 pacer: Pacer | None = None) -> None:
        self.packets = 0
        self.opened = 0
        self.failed = 0
        self._sinks_by_kind = sinks
        self._pacer = pacer
        self._sinks: dict[int, Callable[[bytes, Open], None]] = {}
        self._installed = False
        self._unprotect: Callable[[bytes], bytes] | None = None

    def open(self, data: bytes) -> bytes | None:
        """The decrypted packet, or None (counted in ``failed``) if it is not authentic."""
        assert self._unprotect is not None
        try:
            plain = self._unprotect(data)
        except pylibsrtp.Error:
            self.failed += 1
            return None
        self.opened += 1
        return plain

    def attach(self, kind: str, payload_type: int, dtls: RTCDtlsTransport) -> None:
        sink = self._sinks_by_kind.get(kind)
        if sink is not None:
            self._sinks[payload_type] = sink
        if self._installed:
            return
        self._installed = True
        protocol = dtls.transport._connection._nominated[1].protocol
        original = protocol.datagram_received
        self._unprotect = dtls._rx_srtp.unprotect
        sinks, open_ = self._sinks, self.open

        def datagram_received(data: bytes | str, address: tuple[Any, ...]) -> None:
            if isinstance(data, bytes) and 127 < data[0] < 192 and not 192 <= data[1] <= 208:
                self.packets += 1
                take = sinks.get(data[1] & 0x7F)
                if take is not None:
                    take(data, open_)
                return
            original(data, address)

        setattr(protocol, _DATAGRAM_RECEIVED, datagram_received)
        if self._pacer is not None:
            self._pacer.poll(protocol.transport, datagram_received)


class LeanStream:
    """Replays a :class:`PacketisedClip` in real time on one aiortc sender's stream.

    ``log`` has (clip index, send time) per frame, like the bench's ``TimedReplay``.
    After the last frame it goes on from frame 1 (no periodic keyframe, like a browser).
    """

    def __init__(self, clip: PacketisedClip, sender: RTCRtpSender, pacer: Pacer,
                 incoming: IncomingTap | None = None) -> None:
        self.kind = clip.kind
        self.clip = clip
        self.log: Log = []
        self.keyframes_requested = 0
        self.retransmitted = 0
        self.packets = 0
        self._sender = sender
        self._pacer = pacer
        self._incoming = incoming
        self._wire: RtpWire | None = None
        self._index = 0
        self._count = 0
        self._start = 0.0
        self._next_at = float("inf")
        self._seq = 0
        self._ts_origin = 0
        self._octets = 0
        self._history: list[bytes | None] = [None] * RTP_HISTORY_SIZE
        self._rtx_seq = 0
        self._stopped = False
        original: Callable[[RTCRtpSendParameters], Awaitable[None]] = getattr(sender, _SEND)

        async def send(parameters: RTCRtpSendParameters) -> None:
            await original(parameters)
            self._begin(parameters)

        setattr(sender, _SEND, send)
        setattr(sender, _RETRANSMIT, self._retransmit)
        on_rtcp_feedback(sender, self.request_keyframe)

    def request_keyframe(self) -> None:
        self.keyframes_requested += 1
        self._index = 0

    def stop(self) -> None:
        self._stopped = True

    def _begin(self, parameters: RTCRtpSendParameters) -> None:
        """aiortc's sender started (ICE and DTLS are up): build the header and go."""
        self._wire = wire_for(self._sender, parameters)
        self._seq, self._rtx_seq = random.randrange(32768), random.randrange(32768)
        self._ts_origin = random.randrange(TS_MOD)
        if self._incoming is not None:
            self._incoming.attach(self.kind, self._wire.header[1] & 0x7F, self._wire.transport)
        protocol = self._wire.transport.transport._connection._nominated[1].protocol
        self._wire.sendto = self._pacer.sendto(self._pacer.socket_of(protocol.transport))
        self._start = self._next_at = time.monotonic()
        self._pacer.add(self, self._next_at)

    def send_due(self, now: float) -> float | None:
        """Send every frame due by ``now`` (the pacer's clock: ``time.monotonic()``);
        returns when the next one is due, or None once this stream has ended."""
        wire = self._wire
        if wire is None or self._stopped or wire.transport.state != "connected":
            return None
        while self._next_at <= now:
            self._send_frame(wire)
            self._count += 1
            self._next_at = self._start + self._count * self.clip.period
        return self._next_at

    def _send_frame(self, wire: RtpWire) -> None:
        index = self._index
        payloads = self.clip.frames[index]
        self._index = index + 1 if index + 1 < len(self.clip.frames) else 1
        timestamp = (self._ts_origin + self._count * self.clip.ticks_per_frame) % TS_MOD
        self.log.append((index, time.monotonic()))
        self._seq, ntp, octets = send_frame(wire, payloads, timestamp, self._seq,
                                            self._history)
        self._octets += octets
        self.packets += len(payloads)
        sender = self._sender
        for name, value in zip(SR_FIELDS, (ntp, timestamp, self.packets, self._octets),
                               strict=True):
            setattr(sender, name, value)

    async def _retransmit(self, sequence_number: int) -> None:
        """A NACKed packet, again, as RTX (aiortc's own ``_retransmit``, from our history)."""
        if self._wire is not None:
            self._rtx_seq = retransmit(self._wire, self._history, sequence_number,
                                       self._rtx_seq, self._sender._rtx_ssrc)
            self.retransmitted += 1

