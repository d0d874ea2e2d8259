"""Sessions' media in worker processes: real aiortc client peers talk to a real
``python -m media.worker_main`` child, placed and driven by :class:`WorkerMediaEndpoint`.

The killed-worker test sends SIGKILL to a worker, which is what a crash is.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aiohttp.test_utils import TestServer

from media.errors import MediaError
from media.recorder import RecordingSettings, Segment
from media.relay import RelaySettings
from media.synthetic import read_frame_number
from media.workers import WorkerMediaEndpoint
from server import app_keys
from server.app import create_app
from tests.conftest import make_settings
from tests.integration import parties
from tests.integration.parties import Party
from tests.integration.test_media_relay import Client, digest, make_client, sent_digests

BOUND_S = 10.0
Failure = tuple[str, str, str]


async def eventually(check: Callable[[], bool], within_s: float = BOUND_S) -> None:
    for _ in range(int(within_s / 0.05)):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached")


@pytest.fixture
async def failures() -> list[Failure]:
    return []


@pytest.fixture
async def segments() -> list[Segment]:
    return []


@pytest.fixture
async def workers(tmp_path: Path, failures: list[Failure],
                  segments: list[Segment]) -> AsyncIterator[WorkerMediaEndpoint]:
    def failed(session_id: str, role: str, error: MediaError) -> None:
        failures.append((session_id, role, error.code))

    endpoint = WorkerMediaEndpoint(
        2, RelaySettings(max_sessions=2), on_failure=failed,
        recording=RecordingSettings(tmp_path / "recordings", segment_s=1.5, handover_s=1.0),
        on_segment=segments.append, max_lag_ms=float("inf"))  # placement is not under test
    await endpoint.start()
    yield endpoint
    await endpoint.close()


async def join(endpoint: WorkerMediaEndpoint, session: str, role: str,
               codec: str = "VP8") -> Client:
    client = make_client(codec)
    await client.accept(await endpoint.answer(session, role, await client.offer()))
    return client


async def close_all(*clients: Client) -> None:
    await asyncio.gather(*(c.pc.close() for c in clients))


async def test_sessions_spread_over_workers_and_relay_bit_identical_frames(
    workers: WorkerMediaEndpoint,
) -> None:
    pids = set(workers.worker_pids)
    assert len(pids) == 2 and os.getpid() not in pids
    a_citizen, a_clerk = await join(workers, "a", "citizen"), await join(workers, "a", "clerk")
    b_citizen, b_clerk = await join(workers, "b", "citizen"), await join(workers, "b", "clerk")
    clients = [a_citizen, a_clerk, b_citizen, b_clerk]
    try:
        assert {workers.worker_of("a"), workers.worker_of("b")} == {0, 1}
        assert workers.session_count == 2
        for sender, receiver in ((a_citizen, a_clerk), (a_clerk, a_citizen),
                                 (b_citizen, b_clerk), (b_clerk, b_citizen)):
            await receiver.wait_for("video", lambda frames: len(frames) >= 10)
            await receiver.wait_for("audio", lambda frames: len(frames) >= 10)
            got = {digest("VP8", f.data) for f in receiver.received["video"]}
            assert got <= sent_digests(sender.video)
        # Sticky: a reconnecting clerk of a is answered by the worker holding a.
        worker = workers.worker_of("a")
        again = await join(workers, "a", "clerk")
        clients.append(again)
        assert workers.worker_of("a") == worker
        await again.wait_for("video", lambda frames: len(frames) >= 5)

        await workers.end("a")
        assert workers.worker_of("a") is None and workers.session_count == 1
    finally:
        await close_all(*clients)


async def test_errors_cross_the_process_boundary_with_their_codes(
    workers: WorkerMediaEndpoint,
) -> None:
    with pytest.raises(MediaError) as caught:
        await workers.answer("bad", "citizen", "v=0\r\nthis is not sdp\r\n")
    assert caught.value.code == "invalid_sdp" and caught.value.status == 400
    with pytest.raises(MediaError) as caught:
        await workers.snapshot("nowhere", "citizen")
    assert caught.value.code == "snapshot_failed"


async def test_a_full_set_of_workers_refuses_a_new_session_with_media_busy(
    workers: WorkerMediaEndpoint,
) -> None:
    clients = [await join(workers, f"s{n}", "citizen") for n in range(4)]
    try:
        assert sorted(workers.worker_of(f"s{n}") or 0 for n in range(4)) == [0, 0, 1, 1]
        with pytest.raises(MediaError) as caught:
            await join(workers, "s4", "citizen")
        assert caught.value.code == "media_busy"
        await workers.end("s0")
        clients.append(await join(workers, "s4", "citizen"))
    finally:
        await close_all(*clients)


async def test_snapshot_and_recording_come_back_from_the_worker(
    workers: WorkerMediaEndpoint, segments: list[Segment],
) -> None:
    citizen, clerk = await join(workers, "r", "citizen"), await join(workers, "r", "clerk")
    try:
        await clerk.wait_for("video", lambda frames: len(frames) >= 5)
        image = await asyncio.wait_for(workers.snapshot("r", "citizen"), BOUND_S)
        assert image.dtype == np.uint8 and image.ndim == 3
        assert read_frame_number(image) == 0  # the replay restarts at its keyframe

        await workers.start_recording("r", consent_id="consent-1")
        assert workers.recording("r")
        await asyncio.sleep(2.0)
        stopped = await workers.stop_recording("r")
        assert not workers.recording("r")
        assert stopped and stopped == segments[-len(stopped):]
        assert all(s.session_id == "r" and s.consent_id == "consent-1" and s.path.exists()
                   for s in stopped)
    finally:
        await close_all(citizen, clerk)


async def test_a_killed_worker_fails_its_sessions_and_is_replaced(
    workers: WorkerMediaEndpoint, failures: list[Failure],
) -> None:
    a_citizen, a_clerk = await join(workers, "a", "citizen"), await join(workers, "a", "clerk")
    b_citizen, b_clerk = await join(workers, "b", "citizen"), await join(workers, "b", "clerk")
    clients = [a_citizen, a_clerk, b_citizen, b_clerk]
    try:
        await a_clerk.wait_for("video", lambda frames: len(frames) >= 5)
        victim = workers.worker_of("a")
        assert victim is not None and workers.worker_of("b") != victim
        victim_pid = workers.worker_pids[victim]

        os.kill(victim_pid, signal.SIGKILL)

        await eventually(lambda: len(failures) >= 2)
        assert sorted(failures) == [("a", "citizen", "media_worker_lost"),
                                    ("a", "clerk", "media_worker_lost")]
        assert workers.worker_of("a") is None and workers.worker_of("b") is not None
        await eventually(lambda: len(workers.worker_pids) == 2, within_s=60)
        assert victim_pid not in workers.worker_pids

        # Both sides offer again, as the pages do on media.failed; b never noticed.
        await close_all(a_citizen, a_clerk)
        a_citizen, a_clerk = await join(workers, "a", "citizen"), await join(workers, "a", "clerk")
        clients += [a_citizen, a_clerk]
        await a_clerk.wait_for("video", lambda frames: len(frames) >= 5)
        await a_citizen.wait_for("video", lambda frames: len(frames) >= 5)
        seen = len(b_clerk.received["video"])
        await b_clerk.wait_for("video", lambda frames: len(frames) >= seen + 5)
        assert len(failures) == 2
    finally:
        await close_all(*clients)


async def test_close_stops_every_worker_process(tmp_path: Path) -> None:
    endpoint = WorkerMediaEndpoint(2)
    await endpoint.start()
    pids = endpoint.worker_pids
    await endpoint.close()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


async def test_a_call_through_the_server_with_media_workers_survives_a_killed_worker(
    tmp_path: Path, aiohttp_server: Any,
) -> None:
    """XIAOWU_MEDIA_WORKERS=2 over the real stack: a killed worker reaches both pages as
    media.failed (media_worker_lost), and their new offers bring the call back."""
    app = create_app(make_settings(tmp_path, media_workers=2))
    server: TestServer = await aiohttp_server(app)
    media = app[app_keys.MEDIA]
    assert isinstance(media, WorkerMediaEndpoint)
    media.max_lag_ms = float("inf")  # a loaded test machine must not turn this into media_busy
    clients: list[Client] = []
    try:
        assert len(media.worker_pids) == 2  # started with the server
        clerk = await parties.clerk(server, "wangli")
        kiosk = await parties.kiosk(server)
        await kiosk.ok("queue.join", {"matter": "EDU-TQ-CONFIRM"})
        offer = await clerk.next("offer")
        session_id = (await clerk.ok("offer.accept", {"offer_id": offer["offer_id"]}))[
            "session"]["session_id"]
        citizen, clerk_peer = await negotiate(kiosk, session_id), await negotiate(
            clerk, session_id)
        clients += [citizen, clerk_peer]
        await clerk_peer.wait_for("video", lambda frames: len(frames) >= 5)
        worker = media.worker_of(session_id)
        assert worker is not None

        os.kill(media.worker_pids[worker], signal.SIGKILL)

        for party in (kiosk, clerk):
            failed = await party.next("media.failed")
            assert failed["session_id"] == session_id
            assert failed["code"] == "media_worker_lost"
        citizen, clerk_peer = await negotiate(kiosk, session_id), await negotiate(
            clerk, session_id)
        clients += [citizen, clerk_peer]
        await clerk_peer.wait_for("video", lambda frames: len(frames) >= 5)
        await citizen.wait_for("video", lambda frames: len(frames) >= 5)
        assert {digest("VP8", f.data) for f in clerk_peer.received["video"]} <= sent_digests(
            citizen.video)
    finally:
        await close_all(*clients)
        await parties.close_all()


async def negotiate(party: Party, session_id: str) -> Client:
    client = make_client("VP8")
    await party.ok("webrtc.offer", {"session_id": session_id, "type": "offer",
                                    "sdp": await client.offer()})
    answer = await party.next("webrtc.answer")
    await client.accept(answer["sdp"])
    return client


async def test_workers_exit_when_the_server_process_is_killed() -> None:
    """No orphans: a worker sees its socket close when the server dies, even by SIGKILL."""
    script = ("import asyncio, json\n"
              "from media.workers import WorkerMediaEndpoint\n"
              "async def main():\n"
              "    endpoint = WorkerMediaEndpoint(2)\n"
              "    await endpoint.start()\n"
              "    print(json.dumps(endpoint.worker_pids), flush=True)\n"
              "    await asyncio.sleep(600)\n"
              "asyncio.run(main())\n")
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, stdout=asyncio.subprocess.PIPE)
    try:
        assert server.stdout is not None
        pids = json.loads(await asyncio.wait_for(server.stdout.readline(), 120))
        assert len(pids) == 2
    finally:
        server.kill()
        await server.wait()

    def gone(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state == "Z"  # exited, waiting for init to reap it

    await eventually(lambda: all(gone(pid) for pid in pids), within_s=30)
