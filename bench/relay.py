"""Relay benchmark: N concurrent 1:1 sessions through the server, against a transcoding
baseline and a direct peer-to-peer pair measured in the same run.

Processes: one server (``bench/relay_server.py``), which with ``--workers N`` (N >= 2)
is the product's :class:`media.workers.WorkerMediaEndpoint`: N worker processes, sessions
placed on the least-loaded one; and client processes (``bench/relay_clients.py``): per
side one process per ``--sessions-per-client`` sessions (default 16: each client process
pays for its own 5 ms timer, and at 30 sessions 2 processes a side used about a quarter
less than 4), so one client event loop never carries all peers. Clients replay
pre-encoded 640x480@30 VP8 and Opus. The direct pair (a peer in the first citizen
process and one in the first clerk process, connected to each other) shares the
clients' load, so "added latency" compares like with like.

What the clients do. Only the first ``--sample`` sessions (default 2: with two workers
one on each) and the direct pair receive through aiortc's whole path (RTP parsing,
jitter buffer, NACK, receiver reports, REMB; complete frames tapped and known by their
bytes, or with the transcoding baseline by the frame number drawn in their pixels);
added latency compares them with the direct pair (same path). With ``--sampled-send
lean`` (default) they send like lean peers, with ``aiortc`` through ``RTCRtpSender``
(the same bytes on the wire; aiortc's send path cost a sampled peer about as much as
its receive path). The other sessions' peers are lean (relay_clients.py,
relay_lean.py): aiortc negotiates ICE, DTLS and SRTP and handles RTCP (sender reports,
PLI restarts the replay at its keyframe, NACK answered with RTX), but RTP goes out
pre-packetised (SRTP per packet, one ``sendto`` on the ICE socket) and comes in counted
from the clear RTP header: a video frame's first packet is decrypted (and so
authenticated) for the payload prefix that names the frame, one audio packet in 8 for
the authentication check (``lean_srtp`` in the JSON: packets, decrypted, failed). One
5 ms timer per client process sends what is due and reads what arrived
(``lean_pacer_cpu_pct``: the CPU those ticks took). Loss counts every session's frames;
``latency_frames`` and ``direct_latency_frames`` say how many frames the p95s rest on
(about 540 per sampled session and for the direct pair in a 10 s window).

Clients run at normal priority (``--client-nice`` to change): a sampled client peer
does the same per-packet work as a server leg (SRTP, RTCP, bandwidth estimate), and
niced clients
starve as soon as anything else runs (their loops lag by seconds, the kernel drops
their UDP packets, ICE consent fails and connections close: what made 30 sessions
"not work"). Each phase therefore reports what it could not control: CPU used by
other processes on the machine, CPU the hypervisor gave to other machines (steal: on a
shared host a run can starve with nothing else running here), every loop's lag, and the
kernel's UDP receive-buffer drops during the window.

Figures over the measuring window: server CPU (utime+stime from /proc/<pid>/stat, % of
one core, summed over workers) per session; delivered video fps per receiving track;
loss (video frames sent in the window that never arrived within 1 s; and RTP packets
missing from the counting receivers' sequence numbers); latency per frame (receive time
- send time, matched by clip index; see relay_clients.py), p50/p95, for the relay and
for the direct pair; CPU of each process. The baseline (``--transcode-sessions``, default
min(N, 2): it saturates this machine quickly) runs the same way with aiortc's
MediaRelay in one process.

Usage: ``.venv/bin/python bench/relay.py [--sessions 10] [--workers 1] [--sample 2]
[--window 10]`` (``--profile FILE`` attaches py-spy, from the venv or PATH, to the
pass-through process holding session 0 during the window: the first worker with
``--workers 2``; ``--profile-clients PREFIX`` every client process, merged in the
output). ``--server-aiortc-send`` has the relay's legs send through aiortc's
``RTCRtpSender`` instead of the product's lean sender. Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import json
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench import relay_gauges as gauges  # noqa: E402
from bench.relay_clients import save_clip  # noqa: E402
from bench.relay_profile import top_frames  # noqa: E402
from media.synthetic import encode_audio, encode_video  # noqa: E402

PYTHON = str(REPO / ".venv" / "bin" / "python")
CALL_TIMEOUT_S = 120.0  # niced bench processes may be stopped for tens of seconds
START_TIMEOUT_S = 600.0  # eleven processes importing aiortc at once, niced, on 2 busy cores
CONNECT_WITHIN_S = 30.0
STOP_CHECK_S = 0.1
MATCH_WITHIN_S = 1.0
REPORT_LIMIT = 256 * 1024 * 1024


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
        await self.read(START_TIMEOUT_S)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    async def read(self, timeout_s: float = CALL_TIMEOUT_S) -> dict[str, Any]:
        assert self.process is not None and self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), timeout_s)
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
    workers: int
    connected: int
    setup_s: float
    usage: gauges.Usage
    fps: float
    loss_pct: float
    relay_ms: list[float]
    direct_ms: list[float]
    unknown: int
    server_lag_ms: float
    client_lag_ms: float
    sampled: list[str]
    refused: int
    all_ms: list[float]
    rtp_loss_pct: float
    processes: dict[str, float]
    stopped_s: float
    srtp: dict[str, int]
    pacer_pct: float

    @property
    def cpu_per_session(self) -> float:
        return self.usage.servers_pct / max(1, self.sessions - self.refused)


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


async def wait_connected(sides: list[Child], peers: int) -> int:
    """Poll the clients until ``peers`` peer connections are up (or the time is over)."""
    deadline = time.monotonic() + CONNECT_WITHIN_S
    while True:
        states = [s for side in sides
                  for s in (await side.call(op="states"))["connection"].values()]
        connected = states.count("connected")
        if connected >= peers or time.monotonic() > deadline or "connecting" not in states:
            return connected
        await asyncio.sleep(0.5)


async def run_phase(mode: str, sessions: int, clips: tuple[Path, Path], args: argparse.Namespace,
                    profile: Path | None) -> Phase:
    workers = args.workers if mode == "passthrough" else 1
    per_client = max(1, args.sessions_per_client)
    client_procs = max(1, -(-sessions // per_client))
    server = Child("server")
    servers = [server]
    citizens = [Child(f"citizens{i}") for i in range(client_procs)]
    clerks = [Child(f"clerks{i}") for i in range(client_procs)]
    clients = citizens + clerks
    sample = sessions if mode == "transcode" else args.sample  # transcoding changes bytes
    clip_args = ["--video", str(clips[0]), "--audio", str(clips[1])]
    if mode == "transcode":
        clip_args.append("--decode")
    if args.sampled_send == "lean":
        clip_args.append("--lean-send-sampled")
    try:
        aiortc_send = (["--aiortc-send"] if mode == "passthrough" and args.server_aiortc_send
                       else [])
        await server.start("bench/relay_server.py", "--mode", mode, "--workers", str(workers),
                           *aiortc_send)
        await asyncio.gather(*(side.start("bench/relay_clients.py", *clip_args,
                                          nice=args.client_nice) for side in clients))
        started = time.monotonic()
        refused: set[int] = set()
        for n in range(sessions):
            for role, side in (("citizen", citizens[n % client_procs]),
                               ("clerk", clerks[n % client_procs])):
                offer = await side.call(op="offer", id=f"s{n}/{role}", sample=n < sample)
                reply = await server.call(session=f"s{n}", role=role, offer=offer["sdp"])
                if "error" in reply:
                    print(f"s{n}/{role} refused: {reply['error']}", file=sys.stderr)
                    refused.add(n)
                    continue
                await side.call(op="accept", id=f"s{n}/{role}", sdp=reply["answer"])
        offer = await citizens[0].call(op="offer", id="direct/a")
        answer = await clerks[0].call(op="answer", id="direct/b", sdp=offer["sdp"])
        await citizens[0].call(op="accept", id="direct/a", sdp=answer["sdp"])
        connected = await wait_connected(clients, 2 * sessions + 2)
        setup_s = time.monotonic() - started
        server_pids = (await server.call(op="pids"))["pids"]
        names = {pid: "server" if i == 0 else f"worker{i - 1}"
                 for i, pid in enumerate(server_pids)}
        names.update({c.pid: c.name for c in clients})

        await asyncio.sleep(args.warmup)
        spies = []
        if profile is not None:
            spies.append(await spy_on(server_pids[-1] if workers < 2 else server_pids[1],
                                      profile, args.window))
        if mode == "passthrough" and args.profile_clients is not None:
            for child in clients:
                spies.append(await spy_on(child.pid, client_profile(args, child.name),
                                          args.window))
        pacer_cpu_s = 0.0
        for child in clients:  # resets the loop-lag gauges
            pacer_cpu_s -= (await child.call(op="states"))["pacer_cpu_s"]
        for server in servers:
            await server.call(op="lag")
        client_pids = [c.pid for c in clients]
        start = gauges.read(time.monotonic(), server_pids, client_pids)
        before = {pid: gauges.cpu_seconds(pid) for pid in names}
        stopped_s = 0.0
        window_end = time.monotonic() + args.window
        while (left := window_end - time.monotonic()) > 0:
            await asyncio.sleep(min(STOP_CHECK_S, left))
            if gauges.any_stopped(list(names)):
                stopped_s += STOP_CHECK_S
        end = gauges.read(time.monotonic(), server_pids, client_pids)
        processes = {names[pid]: round(100 * (gauges.cpu_seconds(pid) - cpu) / (end.at - start.at),
                                       1) for pid, cpu in before.items()}
        t0, t1 = start.at, end.at
        server_lag = max([(await s.call(op="lag"))["p99_ms"] for s in servers])
        ends = [await c.call(op="states") for c in clients]
        client_lag = max(end["lag"]["p99_ms"] for end in ends)
        pacer_cpu_s += sum(end["pacer_cpu_s"] for end in ends)
        for spy in spies:
            await asyncio.wait_for(spy.wait(), args.window + 30)
        sent: dict[str, list[Any]] = {}
        received: dict[str, list[Any]] = {}
        unknown = 0
        sampled: list[str] = []
        rtp_packets = rtp_expected = 0
        srtp: dict[str, int] = {}
        for child in clients:
            report = await child.call(op="report")
            sent.update(report["sent"])
            received.update(report["received"])
            unknown += report["unknown"]
            sampled += report["sampled"]
            for packets, expected in report["rtp"].values():
                rtp_packets += packets
                rtp_expected += expected
            for key, value in report["srtp"].items():
                srtp[key] = srtp.get(key, 0) + value
    finally:
        await asyncio.gather(*(child.stop() for child in clients + servers))

    def pairs(a: str, b: str) -> list[tuple[list[Any], list[Any]]]:
        return [(sent[f"{a}/video"], received[f"{b}/video"]),
                (sent[f"{b}/video"], received[f"{a}/video"])]

    relay_ms: list[float] = []
    all_ms: list[float] = []
    lost = total = 0
    for n in range(sessions):
        if n in refused:
            continue
        for sent_log, received_log in pairs(f"s{n}/citizen", f"s{n}/clerk"):
            lost_here, latencies = match(sent_log, received_log, t0, t1)
            lost += lost_here
            total += lost_here + len(latencies)
            all_ms.extend(latencies)
            if n < sample:
                relay_ms.extend(latencies)
    direct_ms = [ms for sent_log, received_log in pairs("direct/a", "direct/b")
                 for ms in match(sent_log, received_log, t0, t1)[1]]
    frames = [sum(1 for _, at in log if t0 <= at <= t1)
              for key, log in received.items() if key.startswith("s")]
    return Phase(
        mode, sessions, workers, connected=connected, setup_s=setup_s,
        usage=gauges.usage(start, end),
        fps=statistics.mean(frames) / (t1 - t0) if frames else 0.0,
        loss_pct=100 * lost / total if total else 100.0,
        relay_ms=relay_ms, direct_ms=direct_ms, unknown=unknown,
        server_lag_ms=server_lag, client_lag_ms=client_lag,
        sampled=sorted({peer.split("/")[0] for peer in sampled} - {"direct"},
                       key=lambda name: int(name[1:])),
        refused=len(refused), all_ms=all_ms,
        rtp_loss_pct=100 * (1 - rtp_packets / rtp_expected) if rtp_expected else 0.0,
        processes=processes, stopped_s=stopped_s, srtp=srtp,
        pacer_pct=100 * pacer_cpu_s / (t1 - t0),
    )


async def spy_on(pid: int, output: Path, window: float) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        py_spy(), "record", "--pid", str(pid), "--duration", str(int(window)), "--rate", "200",
        "--format", "raw", "--output", str(output), "--nonblocking",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )


def client_profile(args: argparse.Namespace, name: str) -> Path:
    prefix: Path = args.profile_clients
    return prefix.parent / f"{prefix.name}.{name}.raw"


def py_spy() -> str:
    own = REPO / ".venv" / "bin" / "py-spy"
    return str(own) if own.exists() else shutil.which("py-spy") or "py-spy"


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
    use = phase.usage
    return (
        f"{phase.mode:>11}: {phase.sessions} sessions on {phase.workers} worker(s), "
        f"{phase.connected}/{2 * phase.sessions + 2} peers connected in {phase.setup_s:.1f} s; "
        f"server CPU {use.servers_pct:.1f} % ({phase.cpu_per_session:.2f} %/session), "
        f"clients {use.clients_pct:.0f} %, other processes {use.others_pct:.0f} %, "
        f"hypervisor steal {use.steal_pct:.0f} %; "
        f"fps {phase.fps:.1f}, loss {phase.loss_pct:.2f} %, latency p50/p95 "
        f"{percentile(phase.relay_ms, 0.5):.1f}/{percentile(phase.relay_ms, 0.95):.1f} ms "
        f"(direct {percentile(phase.direct_ms, 0.5):.1f}/"
        f"{percentile(phase.direct_ms, 0.95):.1f} ms); loop lag p99 server "
        f"{phase.server_lag_ms:.0f} ms, clients {phase.client_lag_ms:.0f} ms; "
        f"UDP buffer drops {use.udp_drops}; unidentified frames {phase.unknown}; "
        f"refused sessions {phase.refused}; sampled {','.join(phase.sampled) or '-'} "
        f"(all sessions p95 {percentile(phase.all_ms, 0.95):.1f} ms, RTP loss "
        f"{phase.rtp_loss_pct:.2f} % on the last hop); CPU % by process {phase.processes}; "
        f"bench processes stopped (SIGSTOP) for ~{phase.stopped_s:.1f} s of the window"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--workers", type=int, default=1,
                        help="pass-through server processes (one per core is the design)")
    parser.add_argument("--sessions-per-client", type=int, default=16)
    parser.add_argument("--client-nice", type=int, default=0)
    parser.add_argument("--sample", type=int, default=2,
                        help="sessions whose peers receive through aiortc's whole path")
    parser.add_argument("--sampled-send", choices=("aiortc", "lean"), default="lean",
                        help="how sampled peers (and the direct pair) send: through "
                             "aiortc's RTCRtpSender or as lean peers; they receive through "
                             "aiortc's whole path either way")
    parser.add_argument("--transcode-sessions", type=int, default=None)
    parser.add_argument("--window", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--profile", type=Path, default=None,
                        help="py-spy raw output file; profiles the pass-through server")
    parser.add_argument("--server-aiortc-send", action="store_true",
                        help="the pass-through legs send through aiortc's RTCRtpSender "
                             "instead of media/lean_sender.py (relay_server.py --aiortc-send)")
    parser.add_argument("--profile-clients", type=Path, default=None,
                        help="py-spy raw output file prefix; profiles every client process "
                             "of the pass-through phase (PREFIX.<process>.raw each) and "
                             "prints their merged top functions")
    args = parser.parse_args()
    transcode_sessions = args.transcode_sessions or min(args.sessions, 2)
    frames = int((args.warmup + args.window + 2) * 30)
    clips = make_clips(frames)
    budget = (4 * (args.warmup + args.window) + CONNECT_WITHIN_S + 5 * args.sessions + 120
              + START_TIMEOUT_S)

    ours = await asyncio.wait_for(
        run_phase("passthrough", args.sessions, clips, args, args.profile), budget)
    print(describe(ours), file=sys.stderr)
    baseline = await asyncio.wait_for(
        run_phase("transcode", transcode_sessions, clips, args, None), budget)
    print(describe(baseline), file=sys.stderr)
    client_raws = sorted(args.profile_clients.parent.glob(
        f"{args.profile_clients.name}.*.raw")) if args.profile_clients is not None else []
    for what, raws in (("pass-through server", [args.profile] if args.profile else []),
                       ("client processes", client_raws)):
        if any(raw.exists() for raw in raws):
            print(f"py-spy, {what}, top by own samples:", file=sys.stderr)
            for line in top_frames([raw for raw in raws if raw.exists()], 16):
                print("  " + line, file=sys.stderr)

    added_p95 = percentile(ours.relay_ms, 0.95) - percentile(ours.direct_ms, 0.95)
    result = {
        "sessions": args.sessions,
        "workers": ours.workers,
        "connected_peers": ours.connected,
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
        "clients_cpu_pct": round(ours.usage.clients_pct, 1),
        "others_cpu_pct": round(ours.usage.others_pct, 1),
        "steal_cpu_pct": round(ours.usage.steal_pct, 1),
        "server_lag_p99_ms": ours.server_lag_ms,
        "client_lag_p99_ms": ours.client_lag_ms,
        "udp_drops": ours.usage.udp_drops,
        "refused_sessions": ours.refused,
        "sampled_sessions": ours.sampled,
        "latency_frames": len(ours.relay_ms),
        "direct_latency_frames": len(ours.direct_ms),
        "all_sessions_latency_p95_ms": round(percentile(ours.all_ms, 0.95), 1),
        "rtp_loss_pct": round(ours.rtp_loss_pct, 2),
        "cpu_pct_by_process": ours.processes,
        "lean_srtp": ours.srtp,
        "lean_pacer_cpu_pct": round(ours.pacer_pct, 1),
        "stopped_s": round(ours.stopped_s, 1),
        "profiled": args.profile is not None,
        "server_aiortc_send": args.server_aiortc_send,
        "sampled_send": args.sampled_send,
        # A starved run delivers little, so it also costs little: its ratio means nothing.
        "valid": (ours.connected == 2 * args.sessions + 2 and ours.loss_pct < 0.5
                  and baseline.loss_pct < 5.0 and ours.stopped_s == 0),
    }
    print(json.dumps({k: None if isinstance(v, float) and math.isnan(v) else v
                      for k, v in result.items()}))


if __name__ == "__main__":
    asyncio.run(main())
