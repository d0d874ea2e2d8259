"""Server processes for the pairing benchmark: start, wait until ready, measure, stop.

Servers run in their own session (``start_new_session``) so a Ctrl-C in the terminal
reaches only the benchmark, which then stops them in order: clients first, then
SIGTERM, then SIGKILL after a bounded wait.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CLK_TCK = os.sysconf("SC_CLK_TCK")


def _cpu_ticks() -> list[int]:
    return [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]


def machine_busy_s() -> float:
    """CPU seconds every process on the machine has used (all cores), from /proc/stat."""
    user, nice, system, _idle, _iowait, irq, softirq, _steal = _cpu_ticks()
    return (user + nice + system + irq + softirq) / CLK_TCK


def steal_s() -> float:
    """CPU seconds the hypervisor gave to other machines while this one wanted to run: on
    a shared host a run can be starved with nothing else running here."""
    return _cpu_ticks()[7] / CLK_TCK


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class ServerProcess:
    """One server child process whose output goes to a log file."""

    def __init__(self, name: str, argv: Sequence[str], port: int, log_path: Path,
                 env: dict[str, str] | None = None) -> None:
        self.name = name
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(
            list(argv), cwd=REPO, env={**os.environ, **(env or {})},
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_ready(self, path: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; "
                                   f"see {self.log_path}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url + path, timeout=2) as response:  # noqa: S310
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{self.name} not ready after {timeout:.0f} s; see {self.log_path}")

    def rss_kb(self) -> int:
        """Resident set size (VmRSS) from /proc, in KiB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError(f"no VmRSS for pid {self.pid}")

    def cpu_s(self, *, system_only: bool = False) -> float:
        """User + system (or only system) CPU seconds used so far."""
        stat = Path(f"/proc/{self.pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2:].split()
        return (0 if system_only else int(fields[11]) / CLK_TCK) + int(fields[12]) / CLK_TCK

    def log_tail(self, lines: int = 20) -> str:
        self._log.flush()
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def stop(self, timeout: float = 8.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()


def start_echo(tmp: Path) -> ServerProcess:
    port = free_port()
    return ServerProcess("echo server",
                         [sys.executable, str(REPO / "bench" / "pairing_echo.py"),
                          "--port", str(port)], port, tmp / "echo.log")


def xiaowu_env(secret: str, wrap_up_s: float) -> dict[str, str]:
    return {"XIAOWU_CITIZEN_TOKEN_SECRET": secret, "XIAOWU_OFFER_TIMEOUT_S": "20",
            "XIAOWU_WRAP_UP_S": str(wrap_up_s), "XIAOWU_LOG_JSON": "true"}


def prepare_xiaowu(data_dir: Path, usernames: Sequence[str], password: str,
                   env: dict[str, str], database: tuple[str, str] | None = None) -> None:
    """Bring the database to the newest schema and create the clerk accounts: the data
    directory's SQLite, or ``database`` = (PostgreSQL URL, a schema to create)."""
    if database is None:
        subprocess.run([sys.executable, "-m", "server", "db", "upgrade", "--data-dir",
                        str(data_dir)], cwd=REPO, env={**os.environ, **env}, check=True,
                       stdout=subprocess.DEVNULL, timeout=120)
    asyncio.run(_create_clerks(data_dir, usernames, password, database))


async def _create_clerks(data_dir: Path, usernames: Sequence[str], password: str,
                         database: tuple[str, str] | None) -> None:
    import sqlalchemy as sa

    from server.accounts import ClerkSpec, create_clerk
    from server.storage.database import Database

    if database is None:
        db = Database(f"sqlite+aiosqlite:///{(data_dir / 'xiaowu.sqlite3').resolve()}")
    else:
        url, schema = database
        admin = Database(url)
        try:
            async with admin.begin() as conn:
                await conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
        finally:
            await admin.close()
        db = Database(url, schema=schema)
        await db.upgrade()
    try:
        async with db.begin() as conn:
            for name in usernames:
                spec = ClerkSpec(name, name.title(), "EDU", "clerk", ("*",), ("370500",))
                await create_clerk(conn, spec, password, must_change=False)
    finally:
        await db.close()


def drop_shared_state(database: tuple[str, str], redis_url: str, prefix: str) -> None:
    """Remove what a several-node run left: its PostgreSQL schema and its Redis keys."""
    asyncio.run(_drop_shared_state(database, redis_url, prefix))


async def _drop_shared_state(database: tuple[str, str], redis_url: str, prefix: str) -> None:
    import sqlalchemy as sa
    from redis.asyncio import Redis

    from server.storage.database import Database

    url, schema = database
    admin = Database(url)
    try:
        async with admin.begin() as conn:
            await conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
    finally:
        await admin.close()
    redis = Redis.from_url(redis_url)
    try:
        keys = [key async for key in redis.scan_iter(match=f"{prefix}*")]
        if keys:
            await redis.delete(*keys)
    finally:
        await redis.aclose()


def start_xiaowu(data_dir: Path, env: dict[str, str],
                 name: str = "xiaowu server") -> ServerProcess:
    port = free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {**env, "XIAOWU_PUBLIC_URL": f"http://127.0.0.1:{port}"}
    return ServerProcess(name,
                         [sys.executable, "-m", "server", "serve", "--port", str(port),
                          "--data-dir", str(data_dir)], port, data_dir / "server.log", env)
