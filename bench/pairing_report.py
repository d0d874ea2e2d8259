"""The pairing benchmark's table and its one-line JSON summary."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any

from bench import pairing_stats as stats
from bench.pairing_profile import top_frames

POSITION_EDGES = (1, 26, 51, 101, 201, 301, 501, 751, 1001, 2001, 5001)
TARGET_RATIO = 3.0
TARGET_KB = 30.0
STEAL_WARN_PCT = 10.0


def _line(label: str, value: object) -> None:
    print(f"  {label:<34} {value}")


def _cpu(used: dict[str, float]) -> str:
    return (f"server {used['server']:.1f} (kernel {used['server_system']:.1f}), citizen "
            f"processes {used['citizens']:.1f}, clerk process {used['clerks']:.1f}, anything "
            f"else on the machine {used['others']:.1f}, hypervisor steal "
            f"{used.get('steal', 0.0):.1f}"
            f" (CPU s in {used['wall']:.1f} s on {os.cpu_count()} cores)")


def _memory(found: dict[str, Any]) -> str:
    return (f"{found['kb_per_conn']:.1f} KB per connection (VmRSS {found['rss_before_kb']} -> "
            f"{found['rss_after_kb']} KiB, {found['connected']} connections)")


def report(figures: dict[str, Any]) -> dict[str, Any]:
    """Print the table; return the summary for the last line."""
    args = figures["args"]
    records = figures["records"]
    joins: list[dict[str, Any]] = records["joins"]
    first = stats.first_offers(records["offers"])
    steady = [j for j in joins if j["phase"] == "steady"]
    accepted = [j for j in steady if j["error"] is None and j["acked"] is not None]
    offer = stats.summarize(stats.offer_latencies(joins, first, "steady"))
    bare = figures["bare"]["rtt"]
    nexts = stats.next_offer_latencies(records["releases"], joins)
    after_citizen = stats.summarize(nexts["after a citizen"])

    print()
    nodes = f"{args['nodes']} node" + ("s" if args["nodes"] > 1 else "")
    print(f"pairing benchmark: {args['citizens']} citizens, {args['clerks']} clerks, "
          f"{args['rate']:g} joins/s for {args['duration']:g} s, {nodes}, "
          f"{args['citizen_procs']} citizen processes + 1 clerk process, 127.0.0.1")
    print()
    print("bare python-socketio echo server (same idle connections)")
    _line("echo round trip", bare)
    _line("idle memory", _memory(figures["bare"]))
    _line("CPU", _cpu(figures["bare"]["cpu"]))
    print()
    s = figures["steady"]
    print(f"xiaowu, steady phase ({figures['clerks_available']} clerks available)")
    _line("join sent -> clerk has offer", offer)
    if args["nodes"] > 1:
        for node, latencies in enumerate(stats.offer_latencies_by_node(
                joins, first, "steady", args["citizen_procs"], args["nodes"]), start=1):
            _line(f"  citizens on node {node}", stats.summarize(latencies))
    _line("join sent -> join ack", stats.summarize(stats.ack_latencies(joins, "steady")))
    _line("join sent -> session.ended", stats.summarize(
        j["ended"] - j["sent"] for j in steady if j["ended"] is not None))
    windows = stats.by_window(joins, first, "steady", 2.0)
    _line("offer p50 per 2 s of joining, ms", " ".join(
        "never" if p50 == float("inf") else f"{p50:.0f}" for _, p50 in windows))
    waiting = [j["position"] for j in accepted if j["state"] == "waiting"]
    _line("joins that found no free clerk", f"{len(waiting)}" + (
        f" (queue position at ack: max {max(waiting)})" if waiting else ""))
    refused = Counter(j["error"] for j in steady if j["error"] is not None)
    _line("joins sent / acked / offered", f"{len(steady)} / {len(accepted)} / "
          f"{offer.count if offer else 0}" + (f"; refused {dict(refused)}" if refused else ""))
    _line("achieved join rate", f"{len(steady) / args['duration']:.1f}/s (no idle citizen: "
          f"{s['starved']} ticks; pacer worst late {s['worst_late_s'] * 1000:.0f} ms)")
    _line("CPU", _cpu(s["cpu"]))
    _line("server CPU per join", f"{1000 * s['cpu']['server'] / max(1, len(steady)):.2f} ms "
          f"(echo server: {1000 * figures['bare']['cpu']['server'] / figures['bare']['sent']:.2f}"
          " ms per echo)")
    _line("idle memory", _memory(figures["idle"]))
    _line("server VmRSS after the phase", f"{s['rss_after_kb']} KiB")
    found_ratio = stats.ratio(stats.ms(offer, "p99_ms"), stats.ms(bare, "p99_ms"))
    _line("offer p99 / echo p99", f"x{found_ratio} (target <= {TARGET_RATIO:g})")
    if "backlog" in figures:
        _backlog(figures["backlog"], joins)
    print("available again -> next offer, tickets waiting")
    _line("after a citizen (end / wrap-up)", after_citizen)
    _line("back from break", stats.summarize(nexts["back from break"]))
    _line("'available' event -> offer (dispatch)", stats.summarize(nexts["presence event"]))
    _line("clerk sessions served", records["served"])
    errors = dict(records["errors"])
    late = errors.pop("wrapup.done: not_in_wrap_up", 0)
    if late:
        _line("wrapup.done refused not_in_wrap_up", f"{late} (the server had ended a zero "
              "wrap-up already)")
    _line("clerk acks with errors", errors or "none")
    _line("citizen sockets dropped", records["citizens_dropped"])
    if args.get("profile") is not None:
        _profiles(Path(args["profile"]), "" if args["nodes"] == 1 else
                  f"-node1of{args['nodes']}")
    print()
    steal_pct = _steal_pct(figures["bare"]["cpu"], s["cpu"])
    if steal_pct > STEAL_WARN_PCT:
        print(f"NOTE: the host took {steal_pct:.0f} % of a core from this machine (hypervisor "
              "steal) while the echo and steady phases ran: the latency figures are the "
              "host's, not the software's; run again when it is quiet")
    idle_kb = figures["idle"]["kb_per_conn"]
    print(f"targets: ratio {found_ratio} (<= {TARGET_RATIO:g}: "
          f"{'met' if found_ratio is not None and found_ratio <= TARGET_RATIO else 'NOT met'}),"
          f" {idle_kb} KB per idle connection (<= {TARGET_KB:g}: "
          f"{'met' if idle_kb <= TARGET_KB else 'NOT met'})")
    return {
        "offer_p50_ms": stats.ms(offer, "p50_ms"), "offer_p99_ms": stats.ms(offer, "p99_ms"),
        "bare_rtt_p50_ms": stats.ms(bare, "p50_ms"), "bare_rtt_p99_ms": stats.ms(bare, "p99_ms"),
        "ratio": found_ratio,
        "next_offer_p50_ms": stats.ms(after_citizen, "p50_ms"),
        "next_offer_p99_ms": stats.ms(after_citizen, "p99_ms"),
        "idle_kb_per_conn": idle_kb, "joins": len(accepted), "offers": offer.count if offer else 0,
        "nodes": args["nodes"], "steal_pct": round(steal_pct, 1),
    }


def _steal_pct(*phases: dict[str, float]) -> float:
    """Hypervisor steal over these phases, in percent of one core."""
    wall = sum(p["wall"] for p in phases)
    return 100 * sum(p.get("steal", 0.0) for p in phases) / wall if wall > 0 else 0.0


def _backlog(found: dict[str, Any], joins: list[dict[str, Any]]) -> None:
    print()
    print(f"xiaowu, backlog phase ({found['clerks_paused']} clerks on break while "
          f"{found['count']} citizens joined one after another, then back)")
    for bucket, summary in stats.by_position(joins, "backlog", POSITION_EDGES):
        _line(f"join ack at position {bucket}", summary)
    _line("queue built in", f"{found['build_s']} s")
    _line("CPU, build and drain", _cpu(found["cpu"]))
    ended = [j["ended"] for j in joins if j["phase"] == "backlog" and j["ended"] is not None]
    if ended:
        took = max(ended) - found["resumed_at"]
        _line("queue drained", f"{len(ended)} tickets in {took:.2f} s "
              f"({len(ended) / took:.0f} sessions/s)" + ("" if found["drained"] else
                                                         " (NOT all drained)"))
    print()


def _profiles(folder: Path, suffix: str) -> None:
    for phase in ("steady", "backlog"):
        total, frames = top_frames(folder / f"{phase}{suffix}.txt")
        if not total:
            continue
        print()
        print(f"server profile, {phase} phase: {total} samples holding the GIL "
              f"({folder / f'{phase}{suffix}.txt'}); inclusive % / self %")
        for frame, inclusive, own in frames:
            print(f"  {inclusive:5.1f} {own:5.1f}  {frame[:110]}")
