"""Where log lines go: a stream written in batches by a small thread.

structlog's ``PrintLogger`` writes and flushes every line: one ``write`` system call per
line, about six per pairing on the signaling path (ticket opened, offer made, presence
changes, session ended), which bench/pairing.py measured at 40-90 us each on this machine
kind, in the event loop. :class:`BatchedLines` keeps the lines in memory and a thread
writes what has gathered ``FLUSH_AFTER_S`` after the first of them, in one call; a line
at warning level or above, or a batch reaching ``FLUSH_BYTES``, is written at once by
the caller. A crash (SIGKILL, power loss) can lose the last ``FLUSH_AFTER_S`` of
info lines, never a warning or an error; a normal exit writes everything
(:meth:`BatchedLines.close`, also registered with ``atexit``). Lines keep their order
whichever thread logs them.
"""

from __future__ import annotations

import atexit
import contextlib
import threading
from typing import Any, TextIO

FLUSH_AFTER_S = 0.05
FLUSH_BYTES = 64 * 1024


class BatchedLines:
    """A line sink shared by every logger of the process."""

    def __init__(self, stream: TextIO, *, flush_after_s: float = FLUSH_AFTER_S,
                 flush_bytes: int = FLUSH_BYTES) -> None:
        self._stream = stream
        self._flush_after_s = flush_after_s
        self._flush_bytes = flush_bytes
        self._lines: list[str] = []
        self._size = 0
        self._gather = threading.Lock()  # guards _lines and _size
        self._write = threading.Lock()  # keeps batches in order on the stream
        self._pending = threading.Event()
        self._stop = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="log-lines", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def add(self, line: str, *, urgent: bool = False) -> None:
        with self._gather:
            self._lines.append(line)
            self._size += len(line)
            full = self._size >= self._flush_bytes
        if urgent or full or self._closed:
            self.flush()
        elif not self._pending.is_set():
            self._pending.set()

    def flush(self) -> None:
        with self._write:
            with self._gather:
                lines, self._lines, self._size = self._lines, [], 0
            if lines:
                self._stream.write("".join(lines))
                self._stream.flush()

    def close(self) -> None:
        """Write what is gathered and stop the thread; later lines are written at once."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self._pending.set()
        self._thread.join(timeout=2)
        self.flush()

    def _run(self) -> None:
        while True:
            self._pending.wait()
            if self._closed:
                return
            self._stop.wait(self._flush_after_s)  # let the burst that woke us gather
            self._pending.clear()
            # A stream gone (closed, disk full) drops the lines rather than the thread.
            with contextlib.suppress(OSError, ValueError):
                self.flush()


class BatchedLogger:
    """structlog logger writing to a :class:`BatchedLines`: ``logger.info(line)`` etc."""

    def __init__(self, sink: BatchedLines) -> None:
        self._sink = sink

    def msg(self, message: str) -> None:
        self._sink.add(message + "\n")

    def urgent(self, message: str) -> None:
        self._sink.add(message + "\n", urgent=True)

    log = debug = info = msg
    warn = warning = err = error = exception = critical = fatal = failure = urgent


class BatchedLoggerFactory:
    def __init__(self, stream: TextIO) -> None:
        self.sink = BatchedLines(stream)

    def __call__(self, *args: Any) -> BatchedLogger:
        return BatchedLogger(self.sink)
