"""Benchmark of pairing citizens with clerks over socket.io, against a bare socket.io echo.

    .venv/bin/python bench/pairing.py [--citizens 1000] [--clerks 100] [--rate 100]
                                      [--duration 20] [--nodes 1] [--backlog N]
                                      [--profile DIR] [--records FILE]

Everything runs on 127.0.0.1 in separate processes: the server, 2 citizen processes and
1 clerk process (one asyncio loop each, websocket transport, no reconnection).

1. Baseline: a bare python-socketio server (``bench/pairing_echo.py``) with the same idle
   connections; one client sends ``echo`` at ``--rate`` for ``--duration`` s.
2. Xiaowu (``python -m server serve``, offers time out after 20 s, zero wrap-up): the
   clerks sign in and go available; the citizens connect (server VmRSS before and after
   gives the memory per idle connection); then citizens join at ``--rate`` for
   ``--duration`` s, re-joining once their session ended. Clerks accept every offer,
   end the session at once (``failed``, ``bench``) and finish wrap-up.
   Offer latency: ``queue.join`` sent by a citizen -> ``offer`` with that ticket received
   by a clerk.
3. Backlog: clerks go on break, ``--backlog`` citizens join one after another (the ack
   time of each join is the server's cost of a join at that queue length), clerks come
   back and drain the queue. "Next offer" latency: a clerk makes itself available while
   tickets are waiting -> its next ``offer``.

With ``--nodes N`` (N > 1) the run measures step 2 twice, first on one node as above,
then on N nodes (``python -m server serve`` each, one Redis, one fresh PostgreSQL schema):
the clerks connect to node 1 and citizen process i to node i mod N, so offers to
citizens on node 2 cross nodes (dispatch under the cross-node lock, emits through the
socket.io Redis manager). Each set of figures is printed as on one node, then the ratio
of the two-node offer p99 to the one-node one (target <= 1.5). The one-node figure is
the default deployment (in-memory queue, SQLite); the N-node one pays for Redis and
PostgreSQL as a province deployment does (``--one-node-on-redis`` puts the one-node
phase on them too). Memory and CPU are summed over the nodes.

Memory per idle connection is the server's VmRSS 2 s after the last citizen connected
minus its VmRSS 1 s before the first, divided by the connections, for both servers the
same way. Nothing forces a collection or a ``malloc_trim`` before reading it: each server
runs as it would in production (Xiaowu with ``server/gc_tuning.py``, the echo server with
Python's defaults). Forcing them would be honest only if the product did the same after
every burst of connections, and it has no reason to: an idle connection's objects are
live and sit in fully used pymalloc arenas, so ``gc.collect()`` + ``malloc_trim(0)`` in
the server moved the figure by less than 0.1 KB when tried.

Prints progress on stderr, then a table and, last, one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import pairing_stats as stats
from bench.pairing_processes import (
    ServerProcess,
    drop_shared_state,
    machine_busy_s,
    prepare_xiaowu,
    start_echo,
    start_xiaowu,
    steal_s,
    xiaowu_env,
)
from bench.pairing_profile import Profiler
from bench.pairing_report import report
from bench.pairing_worker import Worker, WorkerError, call_all

PASSWORD = "Bench-pairing-2024"  # noqa: S105  (throwaway accounts in a temporary database)
MATTER = "EDU-TQ-CONFIRM"
SETTLE_S = 30.0
TARGET_NODES_RATIO = 1.5


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class Bench:
    """Owns every process it starts; leaving the ``with`` block stops them all."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix="xiaowu-pairing-"))
        self.secret = secrets.token_hex(32)
        self.usernames = [f"bench{i:04d}" for i in range(args.clerks)]
        self.subs = [f"bench-{i:05d}" for i in range(args.citizens)]
        self.citizens: list[Worker] = []
        self.clerks: Worker | None = None
        self.servers: list[ServerProcess] = []
        self.profiler: Profiler | None = None
        self.shared: list[tuple[tuple[str, str], str]] = []
        """(PostgreSQL URL and schema, Redis prefix) of each phase on them, to drop."""
        self.failed = True

    def __enter__(self) -> Bench:
        try:
            self._start_workers()
        except BaseException as exc:
            self.__exit__(type(exc), exc, exc.__traceback__)
            raise
        return self

    def _start_workers(self) -> None:
        procs = max(1, self.args.citizen_procs)
        for i in range(procs):
            self.citizens.append(Worker(
                f"citizens-{i}", "bench.pairing_citizens:Citizens",
                {"subs": self.subs[i::procs], "secret": self.secret, "matter": MATTER}))
        self.clerks = Worker("clerks", "bench.pairing_clerks:Clerks",
                             {"usernames": self.usernames, "password": PASSWORD})

    def _restart_workers_and_servers(self) -> None:
        """A new phase starts with fresh client processes (their records are per phase)
        and no server of the previous phase running."""
        for worker in [*self.citizens, *([self.clerks] if self.clerks else [])]:
            worker.stop(timeout=30)
        self.citizens, self.clerks = [], None
        for server in self.servers:
            server.stop()
        self._start_workers()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        quick = kind is not None
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut cleanup short
        if self.profiler is not None:
            self.profiler.stop()
        for worker in [*self.citizens, *([self.clerks] if self.clerks else [])]:
            worker.stop(timeout=3 if quick else 30)
        for server in self.servers:
            server.stop()
        for database, prefix in self.shared:
            try:
                drop_shared_state(database, self.args.redis_url, prefix)
            except Exception as exc:  # cleanup must not hide the run's own error
                progress(f"could not drop the run's schema and Redis keys: {exc}")
        if self.failed or self.args.keep:
            progress(f"kept logs and data in {self.tmp}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    # ---- phases ----------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        figures: dict[str, Any] = {"args": vars(self.args)}
        figures["bare"] = self.baseline()
        figures.update(self.xiaowu(1))
        if self.args.nodes > 1:
            self._restart_workers_and_servers()
            figures["several"] = self.xiaowu(self.args.nodes)
        self.failed = False
        return figures

    def _cpu(self, servers: Sequence[ServerProcess]) -> dict[str, float]:
        """CPU seconds used so far by the servers, the client processes and the machine."""
        assert self.clerks is not None
        return {"server": sum(s.cpu_s() for s in servers),
                "server_system": sum(s.cpu_s(system_only=True) for s in servers),
                "citizens": sum(call_all(self.citizens, "cpu_s", timeout=30)),
                "clerks": self.clerks.call("cpu_s", timeout=30),
                "machine": machine_busy_s(), "steal": steal_s(), "wall": time.monotonic()}

    @staticmethod
    def _cpu_used(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
        used = {k: round(after[k] - before[k], 2) for k in before}
        used["others"] = round(used["machine"] - used["server"] - used["citizens"]
                               - used["clerks"], 2)
        return used

    def _connect_citizens(self, servers: Sequence[ServerProcess],
                          namespace: str) -> dict[str, Any]:
        """Connect every citizen (process i to server i mod N); the servers' VmRSS before
        and after, in KiB."""
        server = servers[0]
        time.sleep(1.0)
        before = sum(s.rss_kb() for s in servers)
        results = call_all(self.citizens, "connect", timeout=300, namespace=namespace,
                           per_worker=[{"url": servers[i % len(servers)].url}
                                       for i in range(len(self.citizens))])
        connected = sum(r["connected"] for r in results)
        errors: Counter[str] = Counter()
        for r in results:
            errors.update(r["errors"])
        time.sleep(2.0)
        after = sum(s.rss_kb() for s in servers)
        where = " and ".join(s.name for s in servers)
        progress(f"{connected} idle connections to the {where} in "
                 f"{max(r['seconds'] for r in results):.1f} s; VmRSS {before} -> {after} KiB"
                 + (f"; errors {dict(errors)}" if errors else ""))
        if connected == 0:
            raise RuntimeError(f"no citizen could connect to the {server.name}: {dict(errors)}")
        return {"connected": connected, "rss_before_kb": before, "rss_after_kb": after,
                "kb_per_conn": round((after - before) / connected, 2),
                "connect_errors": dict(errors)}

    def baseline(self) -> dict[str, Any]:
        args = self.args
        echo = start_echo(self.tmp)
        self.servers.append(echo)
        echo.wait_ready("/healthz")
        progress(f"echo server up (pid {echo.pid})")
        figures = self._connect_citizens([echo], "/")
        cpu = self._cpu([echo])
        result = self.citizens[0].call("echo", timeout=args.duration + 60,
                                       start_at=time.monotonic() + 0.5,
                                       duration=args.duration, rate=args.rate)
        figures["cpu"] = self._cpu_used(cpu, self._cpu([echo]))
        figures["sent"] = result["sent"]
        figures["rtt"] = stats.summarize(result["rtts"])
        progress(f"echo: {figures['rtt']}")
        call_all(self.citizens, "disconnect", timeout=120)
        echo.stop()
        return figures

    def xiaowu(self, nodes: int) -> dict[str, Any]:
        args = self.args
        assert self.clerks is not None
        data_dir = self.tmp / f"data-{nodes}"
        env = xiaowu_env(self.secret, args.wrap_up_s)
        database = None
        if nodes > 1 or args.one_node_on_redis:
            tag = secrets.token_hex(4)
            database = (args.postgres_url, f"xw_bench_{tag}")
            prefix = f"xwbench:{tag}:"
            self.shared.append((database, prefix))
            env.update({"XIAOWU_DATABASE_URL": database[0],
                        "XIAOWU_DATABASE_SCHEMA": database[1],
                        "XIAOWU_REDIS_URL": args.redis_url,
                        "XIAOWU_REDIS_PREFIX": prefix,
                        "XIAOWU_AUTO_MIGRATE": "false"})
        started = time.monotonic()
        prepare_xiaowu(data_dir, self.usernames, PASSWORD, env, database)
        progress(f"database ready with {len(self.usernames)} clerks in "
                 f"{time.monotonic() - started:.1f} s")
        servers = [start_xiaowu(data_dir / f"node{i + 1}" if nodes > 1 else data_dir,
                                {**env, "XIAOWU_NODE_ID": f"node{i + 1}"},
                                f"xiaowu node {i + 1}" if nodes > 1 else "xiaowu server")
                   for i in range(nodes)]
        self.servers.extend(servers)
        for server in servers:
            server.wait_ready("/readyz", timeout=60)
            progress(f"{server.name} up (pid {server.pid}, log {server.log_path})")
        server = servers[0]
        clerks = self.clerks.call("connect", timeout=600, url=server.url)
        progress(f"{clerks['available']} clerks available in {clerks['seconds']:.1f} s"
                 + (f"; errors {clerks['errors']}" if clerks["errors"] else ""))
        if clerks["available"] == 0:
            raise RuntimeError(f"no clerk could connect: {clerks['errors']}\n"
                               f"{server.log_tail()}")
        figures: dict[str, Any] = {"clerks_available": clerks["available"]}
        figures["idle"] = self._connect_citizens(servers, "/citizen")
        figures["steady"] = self._steady(servers)
        if args.backlog > 0 and figures["steady"]["unsettled"]:
            progress(f"backlog phase skipped: {figures['steady']['unsettled']} joins of the "
                     f"steady phase still open after {SETTLE_S:.0f} s")
        elif args.backlog > 0:
            figures["backlog"] = self._backlog(servers, args.backlog)
        collected = call_all(self.citizens, "collect", timeout=60)
        dropped = sum(r["events"].get("disconnect", 0) for r in collected)
        clerk_data = self.clerks.call("collect", timeout=60)
        figures["records"] = {"joins": [j for r in collected for j in r["joins"]],
                              "citizens_dropped": dropped, **clerk_data}
        return figures

    def _steady(self, servers: Sequence[ServerProcess]) -> dict[str, Any]:
        args = self.args
        procs = len(self.citizens)
        self._profile(servers[0], "steady" + profile_suffix(len(servers)))
        cpu = self._cpu(servers)
        start_at = time.monotonic() + 1.0
        progress(f"steady: {args.rate} joins/s for {args.duration} s")
        results = call_all(self.citizens, "steady", timeout=args.duration + SETTLE_S + 60,
                           per_worker=[{"start_at": start_at + i / args.rate}
                                       for i in range(procs)],
                           duration=args.duration, rate=args.rate / procs, settle_s=SETTLE_S)
        elapsed = time.monotonic() - start_at
        figures = {"cpu": self._cpu_used(cpu, self._cpu(servers)),
                   "elapsed_s": round(elapsed, 1),
                   "sent": sum(r["sent"] for r in results),
                   "starved": sum(r["starved"] for r in results),
                   "worst_late_s": round(max(r["worst_late_s"] for r in results), 3),
                   "unsettled": sum(r["open"] for r in results),
                   "rss_after_kb": sum(s.rss_kb() for s in servers)}
        self._stop_profile()
        progress(f"steady: {figures['sent']} joins sent, CPU s {figures['cpu']}")
        return figures

    def _backlog(self, servers: Sequence[ServerProcess], count: int) -> dict[str, Any]:
        assert self.clerks is not None
        paused = self.clerks.call("pause", timeout=60, timeout_s=30)["on_break"]
        progress(f"backlog: {paused} clerks on break; {count} citizens join one by one")
        self._profile(servers[0], "backlog" + profile_suffix(len(servers)))
        cpu = self._cpu(servers)
        started = time.monotonic()
        shares = [count // len(self.citizens) + (i < count % len(self.citizens))
                  for i in range(len(self.citizens))]
        for worker, share in zip(self.citizens, shares, strict=True):
            worker.call("backlog", timeout=600, count=share)
        built = time.monotonic() - started
        progress(f"backlog: {count} waiting tickets in {built:.1f} s; clerks come back")
        resumed = time.monotonic()
        self.clerks.call("resume", timeout=30)
        drained = all(call_all(self.citizens, "wait_done", timeout=200, timeout_s=120))
        used = self._cpu_used(cpu, self._cpu(servers))
        self._stop_profile()
        return {"count": count, "clerks_paused": paused, "build_s": round(built, 2), "cpu": used,
                "resumed_at": resumed, "drained": drained}

    def _profile(self, server: ServerProcess, phase: str) -> None:
        if self.args.profile is not None:
            self.profiler = Profiler(server.pid, self.args.profile / f"{phase}.txt")

    def _stop_profile(self) -> None:
        if self.profiler is not None:
            self.profiler.stop()
            progress(f"profile written to {self.profiler.path}")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--citizens", type=int, default=1000, help="citizen connections (1000)")
    parser.add_argument("--clerks", type=int, default=100, help="clerks (100)")
    parser.add_argument("--rate", type=float, default=100.0, help="joins and echoes per s (100)")
    parser.add_argument("--duration", type=float, default=20.0, help="steady phase, s (20)")
    parser.add_argument("--nodes", type=int, default=1,
                        help="server nodes (1); more also measures one node in the same run")
    parser.add_argument("--one-node-on-redis", action="store_true",
                        help="run the one-node phase on Redis and PostgreSQL too (the cost "
                             "of the shared stores apart from that of a second node)")
    parser.add_argument("--postgres-url", default=os.environ.get(
        "XIAOWU_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"),
        help="PostgreSQL for --nodes > 1 (a schema is created and dropped)")
    parser.add_argument("--redis-url", default=os.environ.get(
        "XIAOWU_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"),
        help="Redis for --nodes > 1 (keys under a fresh prefix, deleted after)")
    parser.add_argument("--backlog", type=int, default=None,
                        help="tickets queued while clerks are on break (default: 3 x clerks, "
                             "at most --citizens; 0 skips the phase)")
    parser.add_argument("--wrap-up-s", type=float, default=0.0,
                        help="XIAOWU_WRAP_UP_S (0: the server ends wrap-up itself)")
    parser.add_argument("--citizen-procs", type=int, default=2, help="citizen processes (2)")
    parser.add_argument("--profile", type=Path, default=None,
                        help="write py-spy collapsed stacks of the server per phase here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--records", type=Path, default=None,
                        help="write the raw records of each phase (joins, offers, releases; "
                             "monotonic seconds) here as JSON, to look at the tail")
    args = parser.parse_args(argv)
    if args.backlog is None:
        args.backlog = min(args.citizens, 3 * args.clerks)
    return args


def _interrupted(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.nodes < 1:
        print("--nodes must be at least 1", file=sys.stderr)
        return 2
    if min(args.citizens, args.clerks) < 1 or args.rate <= 0 or args.duration <= 0:
        print("--citizens, --clerks, --rate and --duration must be positive", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _interrupted)
    try:
        with Bench(args) as bench:
            figures = bench.run()
    except KeyboardInterrupt:
        print("interrupted; every process the benchmark started was stopped", file=sys.stderr)
        return 130
    except (subprocess.CalledProcessError, WorkerError, RuntimeError, TimeoutError) as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    if args.records is not None:
        args.records.write_text(json.dumps(
            {"one_node": figures["records"],
             **({"several_nodes": figures["several"]["records"]} if "several" in figures else {})}))
    print(json.dumps(summarize(figures)))
    return 0


def profile_suffix(nodes: int) -> str:
    """Of a phase's profile file: one node's and node 1's of several do not overwrite
    each other."""
    return "" if nodes == 1 else f"-node1of{nodes}"


def summarize(figures: dict[str, Any]) -> dict[str, Any]:
    """Print the one-node table, and with several nodes theirs and the ratio; return the
    figures for the JSON line."""
    several = figures.pop("several", None)
    found = report({**figures, "args": {**figures["args"], "nodes": 1}})
    if several is None:
        return found
    args = figures["args"]
    found_several = report({"args": args, "bare": figures["bare"], **several})
    ratio = stats.ratio(found_several["offer_p99_ms"], found["offer_p99_ms"])
    met = ratio is not None and ratio <= TARGET_NODES_RATIO
    print(f"{args['nodes']} nodes / 1 node, offer p99: x{ratio} (target <= "
          f"{TARGET_NODES_RATIO:g}: {'met' if met else 'NOT met'}); offer p50 "
          f"{found_several['offer_p50_ms']} ms vs {found['offer_p50_ms']} ms")
    return {**found, "several_nodes": found_several, "nodes_p99_ratio": ratio,
            "nodes_target": TARGET_NODES_RATIO}


if __name__ == "__main__":
    sys.exit(main())
