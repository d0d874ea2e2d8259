"""What the relay bench reads from /proc: CPU of its own processes and of the machine,
and the kernel's UDP receive-buffer drops.

A benchmark sharing 2 cores with other work must say how much of the machine it got:
``others_pct`` is the CPU that processes outside the bench used during the window.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def any_stopped(pids: list[int]) -> bool:
    """Whether one of ``pids`` is stopped (SIGSTOP): other work on this machine may pause
    niced processes while it measures, which no CPU figure shows."""
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state in ("T", "t"):
            return True
    return False


def _cpu_fields() -> list[int]:
    """The machine's ``cpu`` line of /proc/stat: user nice system idle iowait irq softirq
    steal guest guest_nice, in clock ticks since boot."""
    return [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]


def machine_busy_seconds() -> float:
    """CPU seconds all cores ran something since boot: user (guest time is counted in
    it already), nice, system, irq and softirq."""
    return sum(_cpu_fields()[:7]) / CLK_TCK - idle_seconds()


def idle_seconds() -> float:
    fields = _cpu_fields()
    return (fields[3] + fields[4]) / CLK_TCK


def steal_seconds() -> float:
    """CPU seconds the hypervisor gave to other machines while this one wanted to run:
    on a shared host a bench can be starved by work that no process here shows."""
    fields = _cpu_fields()
    return fields[7] / CLK_TCK if len(fields) > 7 else 0.0


def udp_receive_drops() -> int:
    """Datagrams the kernel dropped machine-wide because a socket's buffer was full."""
    lines = Path("/proc/net/snmp").read_text().splitlines()
    for head, values in itertools.pairwise(lines):
        if head.startswith("Udp:") and values.startswith("Udp:"):
            return int(values.split()[head.split().index("RcvbufErrors")])
    return 0


@dataclass(frozen=True, slots=True)
class Reading:
    at: float
    servers: float
    clients: float
    machine: float
    udp_drops: int
    steal: float = 0.0


def read(at: float, servers: list[int], clients: list[int]) -> Reading:
    return Reading(at, sum(cpu_seconds(pid) for pid in servers),
                   sum(cpu_seconds(pid) for pid in clients), machine_busy_seconds(),
                   udp_receive_drops(), steal_seconds())


@dataclass(frozen=True, slots=True)
class Usage:
    """Percent of one core over the window, and drops counted in it."""

    servers_pct: float
    clients_pct: float
    others_pct: float
    udp_drops: int
    steal_pct: float = 0.0
    """Of one core: CPU the hypervisor took for other machines (not in ``others_pct``)."""


def usage(start: Reading, end: Reading) -> Usage:
    seconds = end.at - start.at
    servers = end.servers - start.servers
    clients = end.clients - start.clients
    others = end.machine - start.machine - servers - clients
    return Usage(100 * servers / seconds, 100 * clients / seconds,
                 max(0.0, 100 * others / seconds), end.udp_drops - start.udp_drops,
                 100 * (end.steal - start.steal) / seconds)
