"""Optional py-spy profile of the server during a benchmark phase, and its top frames.

``py-spy record --format raw --gil`` writes collapsed stacks (``frame;frame;... count``)
of whichever thread holds the GIL at each sample: where the server's Python CPU time
goes, whatever the thread (the event loop, aiosqlite's), without the time threads spend
waiting in epoll or in SQLite's fsync. The files are also flame-graph input.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path


def _py_spy() -> str:
    beside = Path(sys.executable).parent / "py-spy"
    found = str(beside) if beside.exists() else shutil.which("py-spy")
    if found is None:
        raise RuntimeError("--profile needs py-spy: .venv/bin/pip install py-spy")
    return found


class Profiler:
    def __init__(self, pid: int, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._log = path.with_suffix(".log").open("wb")
        self.proc: subprocess.Popen[bytes] | None = subprocess.Popen(
            [_py_spy(), "record", "--format", "raw", "--nolineno", "--gil", "--pid", str(pid),
             "--output", str(path)],
            stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)

    def stop(self) -> None:
        """Stop sampling; py-spy writes its file on SIGINT."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None
        self._log.close()


def top_frames(path: Path, count: int = 15) -> tuple[int, list[tuple[str, float, float]]]:
    """Samples, and the frames with the most inclusive samples: (frame, inclusive %,
    self %), skipping frames that every stack of a thread goes through."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    if not path.exists():
        return 0, []
    for line in path.read_text().splitlines():
        stack, _, number = line.rpartition(" ")
        if not stack or not number.isdigit():
            continue
        samples = int(number)
        frames = stack.split(";")
        total += samples
        own[frames[-1]] += samples
        for frame in set(frames):
            inclusive[frame] += samples
    boring = ("asyncio/", "run_app", "<module>", "_run_module", "_run_code", "server/cli.py",
              "threading.py")
    ranked = [(frame, n) for frame, n in inclusive.most_common()
              if not any(b in frame for b in boring)]
    return total, [(frame, 100.0 * n / total, 100.0 * own[frame] / total)
                   for frame, n in ranked[:count]]
