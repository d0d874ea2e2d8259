"""Relay benchmark: N concurrent 1:1 sessions through the server, against a transcoding
baseline and a direct peer-to-peer pair measured in the same run.

Processes: the server (``bench/relay_server.py``, normal priority) and two client
processes (``bench/relay_clients.py``, ``nice``): one holds every citizen peer, the other
every clerk peer; both replay pre-encoded 640x480@30 VP8 and Opus. The direct pair (one
peer in each client process, connected to each other) shares the clients' load, so
"added latency" compares like with like.

Figures over the measuring window: server CPU (utime+stime from /proc/<pid>/stat, % of
one core) per session; delivered video fps per receiving track; loss (video frames sent
in the window that never arrived within 1 s); latency per frame (receive time - send
time, matched by clip index; see relay_clients.py), p50/p95, for the relay and for the
direct pair. The baseline (``--transcode-sessions``, default min(N, 2): it saturates this
machine quickly) runs the same way with aiortc's MediaRelay.

Usage: ``.venv/bin/python bench/relay.py [--sessions 10] [--window 10]``
(``--profile FILE`` attaches py-spy to the pass-through server during the window).
Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.relay_clients import save_clip  # noqa: E402
from bench.relay_profile import top_frames  # noqa: E402
from media.synthetic import encode_audio, encode_video  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
PYTHON = str(REPO / ".venv" / "bin" / "python")
CALL_TIMEOUT_S = 30.0
MATCH_WITHIN_S = 1.0
REPORT_LIMIT = 256 * 1024 * 1024


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


class Child:
    """A child process speaking JSON lines on stdio; stopped (and killed) by its pid."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.process: asyncio.subprocess.Process | None = None

    async def start(self, *args: str, nice: int = 0) -> None:
        command = [PYTHON, *args]
        if nice:
            command = ["nice", "-n", str(nice), *command]
        self.process = await asyncio.create_subprocess_exec(
            *command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, limit=REPORT_LIMIT,
        )
        await self.read()

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    async def read(self) -> dict[str, Any]:
        assert self.process is not None and self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), CALL_TIMEOUT_S)
        if not line:
            raise RuntimeError(f"{self.name} exited")
        reply: dict[str, Any] = json.loads(line)
        return reply

    async def call(self, **request: Any) -> dict[str, Any]:
        assert self.process is not None and self.process.stdin is not None
        self.process.stdin.write((json.dumps(request) + "\n").encode())
        await self.process.stdin.drain()
        return await self.read()

    async def stop(self) -> None:
        process = self.process
        if process is None or process.returncode is not None:
            return
        try:
            await asyncio.wait_for(self.call(op="close"), 5.0)
            await asyncio.wait_for(process.wait(), 5.0)
        except (TimeoutError, RuntimeError, BrokenPipeError, ConnectionResetError):
            pass
        if process.returncode is None:
            process.kill()
            await process.wait()


@dataclass
class Phase:
    mode: str
    sessions: int
    cpu_pct: float
    client_cpu_pct: float
    fps: float
    loss_pct: float
    relay_ms: list[float]
    direct_ms: list[float]
    unknown: int

    @property
    def cpu_per_session(self) -> float:
        return self.cpu_pct / self.sessions


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def match(sent: list[list[Any]], received: list[list[Any]], t0: float,
          t1: float) -> tuple[int, list[float]]:
    """(frames sent in the window that never arrived, latencies in ms of those that did)."""
    arrivals: dict[int, list[float]] = {}
    for index, at in received:
        arrivals.setdefault(index, []).append(at)
    lost, latencies = 0, []
    for index, at in sent:
        if not t0 <= at <= t1 - MATCH_WITHIN_S:
            continue
        times = arrivals.get(index, [])
        position = bisect.bisect_left(times, at)
        if position < len(times) and times[position] - at <= MATCH_WITHIN_S:
            latencies.append((times[position] - at) * 1000)
        else:
            lost += 1
    return lost, latencies


async def run_phase(mode: str, sessions: int, clips: tuple[Path, Path], warmup: float,
                    window: float, profile: Path | None) -> Phase:
    server, citizens, clerks = Child("server"), Child("citizens"), Child("clerks")
    children = (citizens, clerks, server)
    clip_args = ["--video", str(clips[0]), "--audio", str(clips[1])]
    if mode == "transcode":
        clip_args.append("--decode")
    try:
        await server.start("bench/relay_server.py", "--mode", mode)
        await citizens.start("bench/relay_clients.py", *clip_args, nice=10)
        await clerks.start("bench/relay_clients.py", *clip_args, nice=10)
        for n in range(sessions):
            for role, side in (("citizen", citizens), ("clerk", clerks)):
                offer = await side.call(op="offer", id=f"s{n}/{role}")
                reply = await server.call(session=f"s{n}", role=role, offer=offer["sdp"])
                await side.call(op="accept", id=f"s{n}/{role}", sdp=reply["answer"])
        offer = await citizens.call(op="offer", id="direct/a")
        answer = await clerks.call(op="answer", id="direct/b", sdp=offer["sdp"])
        await citizens.call(op="accept", id="direct/a", sdp=answer["sdp"])

        await asyncio.sleep(warmup)
        spy = None
        if profile is not None:
            spy = await asyncio.create_subprocess_exec(
                str(REPO / ".venv" / "bin" / "py-spy"), "record", "--pid", str(server.pid),
                "--duration", str(int(window)), "--rate", "200", "--format", "raw",
                "--output", str(profile), "--nonblocking",
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            )
        t0 = time.monotonic()
        cpu0 = cpu_seconds(server.pid)
        clients0 = cpu_seconds(citizens.pid) + cpu_seconds(clerks.pid)
        await asyncio.sleep(window)
        t1 = time.monotonic()
        cpu1 = cpu_seconds(server.pid)
        clients1 = cpu_seconds(citizens.pid) + cpu_seconds(clerks.pid)
        if spy is not None:
            await asyncio.wait_for(spy.wait(), window + 30)
        reports = {"citizen": await citizens.call(op="report"),
                   "clerk": await clerks.call(op="report")}
    finally:
        await asyncio.gather(*(child.stop() for child in children))

    def pairs(prefix_a: str, prefix_b: str) -> list[tuple[list[Any], list[Any]]]:
        return [
            (reports["citizen"]["sent"][f"{prefix_a}/video"],
             reports["clerk"]["received"][f"{prefix_b}/video"]),
            (reports["clerk"]["sent"][f"{prefix_b}/video"],
             reports["citizen"]["received"][f"{prefix_a}/video"]),
        ]

    relay_ms: list[float] = []
    lost = total = 0
    for n in range(sessions):
        for sent, received in pairs(f"s{n}/citizen", f"s{n}/clerk"):
            lost_here, latencies = match(sent, received, t0, t1)
            lost += lost_here
            total += lost_here + len(latencies)
            relay_ms.extend(latencies)
    direct_ms = [ms for sent, received in pairs("direct/a", "direct/b")
                 for ms in match(sent, received, t0, t1)[1]]
    frames = [sum(1 for _, at in received if t0 <= at <= t1)
              for report in reports.values()
              for key, received in report["received"].items() if key.startswith("s")]
    return Phase(
        mode, sessions,
        cpu_pct=100 * (cpu1 - cpu0) / (t1 - t0),
        client_cpu_pct=100 * (clients1 - clients0) / (t1 - t0),
        fps=statistics.mean(frames) / (t1 - t0) if frames else 0.0,
        loss_pct=100 * lost / total if total else 100.0,
        relay_ms=relay_ms, direct_ms=direct_ms,
        unknown=sum(report["unknown"] for report in reports.values()),
    )


def make_clips(frames: int) -> tuple[Path, Path]:
    """Encode once per machine (cached in /tmp): 640x480@30 VP8 and Opus."""
    directory = Path(tempfile.gettempdir()) / "xiaowu-bench-relay"
    directory.mkdir(exist_ok=True)
    video, audio = directory / f"vp8-640x480-{frames}.clip", directory / "opus-20s.clip"
    if not video.exists():
        print(f"encoding {frames} frames of 640x480 VP8 once...", file=sys.stderr)
        save_clip(video, encode_video("VP8", frames, 640, 480).frames)
    if not audio.exists():
        save_clip(audio, encode_audio(20.0).frames)
    return video, audio


def describe(phase: Phase) -> str:
    return (
        f"{phase.mode:>11}: {phase.sessions} sessions, server CPU {phase.cpu_pct:.1f} % "
        f"({phase.cpu_per_session:.2f} %/session), clients {phase.client_cpu_pct:.0f} %, "
        f"fps {phase.fps:.1f}, loss {phase.loss_pct:.2f} %, latency p50/p95 "
        f"{percentile(phase.relay_ms, 0.5):.1f}/{percentile(phase.relay_ms, 0.95):.1f} ms "
        f"(direct {percentile(phase.direct_ms, 0.5):.1f}/"
        f"{percentile(phase.direct_ms, 0.95):.1f} ms), unidentified frames {phase.unknown}"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--transcode-sessions", type=int, default=None)
    parser.add_argument("--window", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--profile", type=Path, default=None,
                        help="py-spy raw output file; profiles the pass-through server")
    args = parser.parse_args()
    transcode_sessions = args.transcode_sessions or min(args.sessions, 2)
    frames = int((args.warmup + args.window + 2) * 30)
    clips = make_clips(frames)
    budget = 4 * (args.warmup + args.window) + 120

    ours = await asyncio.wait_for(
        run_phase("passthrough", args.sessions, clips, args.warmup, args.window, args.profile),
        budget)
    print(describe(ours), file=sys.stderr)
    baseline = await asyncio.wait_for(
        run_phase("transcode", transcode_sessions, clips, args.warmup, args.window, None),
        budget)
    print(describe(baseline), file=sys.stderr)
    if args.profile is not None and args.profile.exists():
        print("py-spy, pass-through server, top by own samples:", file=sys.stderr)
        for line in top_frames(args.profile, 12):
            print("  " + line, file=sys.stderr)

    added_p95 = percentile(ours.relay_ms, 0.95) - percentile(ours.direct_ms, 0.95)
    result = {
        "sessions": args.sessions,
        "cpu_pct_per_session": round(ours.cpu_per_session, 2),
        "transcode_sessions": transcode_sessions,
        "transcode_cpu_pct_per_session": round(baseline.cpu_per_session, 2),
        "ratio": round(baseline.cpu_per_session / ours.cpu_per_session, 1),
        "added_latency_p50_ms": round(
            percentile(ours.relay_ms, 0.5) - percentile(ours.direct_ms, 0.5), 1),
        "added_latency_p95_ms": round(added_p95, 1),
        "transcode_added_latency_p95_ms": round(
            percentile(baseline.relay_ms, 0.95) - percentile(baseline.direct_ms, 0.95), 1),
        "loss_pct": round(ours.loss_pct, 2),
        "transcode_loss_pct": round(baseline.loss_pct, 2),
        "fps": round(ours.fps, 1),
        "transcode_fps": round(baseline.fps, 1),
        "profiled": args.profile is not None,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    asyncio.run(main())
