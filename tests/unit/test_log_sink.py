"""Log lines written in batches: order kept, nothing lost, warnings at once."""

import io
import threading
import time

from server.log_sink import BatchedLines, BatchedLogger


class CountingStream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def test_a_burst_of_info_lines_is_one_write_and_nothing_is_lost() -> None:
    stream = CountingStream()
    sink = BatchedLines(stream, flush_after_s=60)
    logger = BatchedLogger(sink)
    for n in range(200):
        logger.info(f"line {n}")
    assert stream.getvalue() == ""  # gathered, not written line by line
    sink.close()
    assert stream.getvalue().splitlines() == [f"line {n}" for n in range(200)]
    assert stream.writes == 1


def test_the_thread_writes_a_batch_without_being_asked() -> None:
    stream = CountingStream()
    sink = BatchedLines(stream, flush_after_s=0.01)
    BatchedLogger(sink).info("hello")
    deadline = time.monotonic() + 5
    while not stream.getvalue() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert stream.getvalue() == "hello\n"
    sink.close()


def test_a_warning_is_written_at_once_after_the_lines_before_it() -> None:
    stream = CountingStream()
    sink = BatchedLines(stream, flush_after_s=60)
    logger = BatchedLogger(sink)
    logger.info("first")
    logger.warning("second")
    assert stream.getvalue() == "first\nsecond\n"
    logger.error("third")
    assert stream.getvalue().endswith("third\n")
    sink.close()


def test_a_full_batch_is_written_by_the_caller() -> None:
    stream = CountingStream()
    sink = BatchedLines(stream, flush_after_s=60, flush_bytes=100)
    logger = BatchedLogger(sink)
    for _ in range(5):
        logger.info("x" * 30)
    assert stream.writes >= 1 and len(stream.getvalue()) >= 100
    sink.close()
    assert stream.getvalue() == ("x" * 30 + "\n") * 5


def test_lines_from_several_threads_all_arrive_each_thread_in_order() -> None:
    stream = CountingStream()
    sink = BatchedLines(stream, flush_after_s=0.001, flush_bytes=2_000)
    logger = BatchedLogger(sink)

    def log(name: str) -> None:
        for n in range(500):
            logger.info(f"{name} {n}")

    threads = [threading.Thread(target=log, args=(f"t{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sink.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2_000
    for i in range(4):
        assert [line for line in lines if line.startswith(f"t{i} ")] == \
            [f"t{i} {n}" for n in range(500)]


def test_after_close_lines_are_written_at_once() -> None:
    stream = CountingStream()
    sink = BatchedLines(stream)
    sink.close()
    BatchedLogger(sink).info("late")
    assert stream.getvalue() == "late\n"
