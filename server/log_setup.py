"""structlog configuration: readable lines on a terminal, JSON lines in production, written
in batches (server/log_sink.py)."""

from __future__ import annotations

import functools
import logging
import sys
from typing import TextIO

import orjson
import structlog

from server.log_sink import BatchedLoggerFactory


def configure(*, json: bool, level: int = logging.INFO) -> None:
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer(serializer=_json_line) if json
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=_factory_for(sys.stderr),
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@functools.cache
def _factory_for(stream: TextIO) -> BatchedLoggerFactory:
    """One batching thread per stream, however often ``configure`` runs."""
    return BatchedLoggerFactory(stream)


def _json_line(event: dict[str, object], **_: object) -> str:
    """orjson: UTF-8 (Chinese as itself), and a few times cheaper than the standard
    library's encoder, which was most of the cost of a log line on the signaling path;
    anything it cannot encode is logged as its ``str``."""
    return orjson.dumps(event, default=str).decode()
