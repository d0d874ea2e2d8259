"""The server side of the relay benchmark, alone in its process, driven over stdio.

``--mode passthrough`` is the product: :class:`media.endpoint.LocalMediaEndpoint` in
this process, or with ``--workers N`` (N >= 2) :class:`media.workers.WorkerMediaEndpoint`
with N worker processes, placing sessions as the server does. Its forwarding legs send
through :mod:`media.lean_sender`, or with ``--aiortc-send`` through aiortc's
``RTCRtpSender`` (``RelaySettings.lean_send`` off), and receive RTP in the datagram
callback (:mod:`media.lean_receive`), or with ``--aiortc-receive`` through aioice's
queue (``lean_receive`` off), for A/B comparison.
``--mode transcode`` is the baseline the issue names: per participant a peer connection
whose received tracks are decoded by aiortc and fanned out through
``aiortc.contrib.media.MediaRelay`` to the other participant's peer connection, which
re-encodes them. Each participant offers, the server answers, in both modes.

Protocol: ``{"session", "role", "offer"}`` per line on stdin; ``{"answer"}`` back, or
``{"error": code}`` when the endpoint refuses (e.g. ``media_busy``); ``{"op": "pids"}``
gives this process's pid and its workers'; ``{"op": "lag"}`` the loop lag p99 of this
process and, with workers, the highest a worker reported over its last 10 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from typing import Any

from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaRelay

from bench.loop_lag import LoopLag
from media.endpoint import LocalMediaEndpoint
from media.errors import MediaError
from media.relay import RelaySettings
from media.workers import WorkerMediaEndpoint

ROLES = ("citizen", "clerk")


class LateTrack(MediaStreamTrack):
    """An outgoing track whose source (the other participant's relayed track) may only
    exist after this participant's answer was sent."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self._source: asyncio.Future[MediaStreamTrack] = (
            asyncio.get_running_loop().create_future())

    def set_source(self, track: MediaStreamTrack) -> None:
        if not self._source.done():
            self._source.set_result(track)

    async def recv(self) -> Any:
        source = await self._source
        return await source.recv()


class TranscodingEndpoint:
    def __init__(self) -> None:
        self._relay = MediaRelay()
        self._pcs: list[RTCPeerConnection] = []
        self._outgoing: dict[tuple[str, str, str], LateTrack] = {}
        self._incoming: dict[tuple[str, str, str], MediaStreamTrack] = {}

    def _outgoing_track(self, session: str, role: str, kind: str) -> LateTrack:
        key = (session, role, kind)
        if key not in self._outgoing:
            self._outgoing[key] = LateTrack(kind)
        return self._outgoing[key]

    async def answer(self, session: str, role: str, offer: str) -> str:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self._pcs.append(pc)
        other = ROLES[1] if role == ROLES[0] else ROLES[0]

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            relayed = self._relay.subscribe(track)
            self._outgoing_track(session, other, track.kind).set_source(relayed)

        for kind in ("video", "audio"):
            pc.addTransceiver(self._outgoing_track(session, role, kind), direction="sendrecv")
        await pc.setRemoteDescription(RTCSessionDescription(offer, "offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        return str(pc.localDescription.sdp)

    async def close(self) -> None:
        await asyncio.gather(*(pc.close() for pc in self._pcs))


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=["passthrough", "transcode"], required=True)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--max-lag-ms", type=float, default=float("inf"),
                        help="skip a worker lagging more (the server's default is 100 ms; "
                             "the bench starts all sessions at once, which the gate would "
                             "refuse, and measures what the workers carry)")
    parser.add_argument("--aiortc-send", action="store_true",
                        help="pass-through legs send through aiortc's RTCRtpSender, not "
                             "media/lean_sender.py (RelaySettings.lean_send=False)")
    parser.add_argument("--aiortc-receive", action="store_true",
                        help="pass-through legs receive RTP through aioice's queue, not "
                             "media/lean_receive.py (RelaySettings.lean_receive=False)")
    args = parser.parse_args()
    if (args.aiortc_send or args.aiortc_receive) and args.mode != "passthrough":
        parser.error("--aiortc-send and --aiortc-receive need --mode passthrough")
    settings = RelaySettings(lean_send=not args.aiortc_send,
                             lean_receive=not args.aiortc_receive)
    endpoint: LocalMediaEndpoint | WorkerMediaEndpoint | TranscodingEndpoint
    if args.mode == "transcode":
        endpoint = TranscodingEndpoint()
    elif args.workers >= 2:
        endpoint = WorkerMediaEndpoint(args.workers, settings, max_lag_ms=args.max_lag_ms)
        await endpoint.start()
    else:
        endpoint = LocalMediaEndpoint(settings)
    loop = asyncio.get_running_loop()
    lag = LoopLag()
    lag.start()
    print(json.dumps({"ready": True}), flush=True)
    try:
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            request = json.loads(line)
            if request.get("op") == "close":
                break
            if request.get("op") == "pids":
                workers = endpoint.worker_pids if isinstance(endpoint, WorkerMediaEndpoint) else []
                print(json.dumps({"pids": [os.getpid(), *workers]}), flush=True)
                continue
            if request.get("op") == "lag":
                own = lag.take()
                if isinstance(endpoint, WorkerMediaEndpoint):
                    reported = [s.lag_p99_ms for s in endpoint.worker_statuses() if s]
                    own["workers_p99_ms"] = max(reported, default=0.0)
                    own["p99_ms"] = max(own["p99_ms"], own["workers_p99_ms"])
                print(json.dumps(own), flush=True)
                continue
            try:
                answer = await endpoint.answer(request["session"], request["role"],
                                               request["offer"])
            except MediaError as exc:
                print(json.dumps({"error": exc.code}), flush=True)
                continue
            print(json.dumps({"answer": answer}), flush=True)
    finally:
        await endpoint.close()
        print(json.dumps({}), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
