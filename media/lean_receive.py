"""Incoming SRTP handled in aioice's datagram callback, not through its queue.

aiortc receives every datagram twice over: aioice's ``Connection.data_received`` puts it
in an ``asyncio.Queue``, and the DTLS transport's task takes it out again and awaits its
way down to ``RTCDtlsTransport._handle_rtp_data`` -- a task wake-up and a queue hop per
packet (a relay worker's profile: the queue alone 6 % of its samples). :func:`receive_directly`
hands SRTP packets (not SRTCP, not DTLS or anything before the handshake: those keep
aiortc's path) from the callback straight to that same ``_handle_rtp_data``, after the
same unprotect. Everything from there on is aiortc's (routing, statistics, NACK
generation, the bandwidth estimate) and ours (the frame tap, which forwards).

``_handle_rtp_data`` is a coroutine, but on a UDP pair it never waits: what it sends
(NACK, PLI) goes through ``sendto``. It is run with ``send(None)``; should it wait after
all (a TURN channel being bound), the rest of it continues as a task. The transport's
received-bytes/packets statistics no longer count these packets.

Private names used, checked by :func:`media.aiortc_internals.lean_send_missing`:
``RTCIceTransport._connection``, ``aioice.Connection.data_received`` (replaced per
instance), ``RTCDtlsTransport._rx_srtp`` and ``_handle_rtp_data``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Generator
from typing import Any

import pylibsrtp
from aiortc import RTCDtlsTransport, clock
from aiortc.rtp import is_rtcp

logger = logging.getLogger(__name__)

_DATA_RECEIVED = "data_received"


def receive_directly(dtls: RTCDtlsTransport) -> None:
    """Handle ``dtls``'s incoming SRTP in its ICE connection's datagram callback."""
    connection = dtls.transport._connection
    queued = connection.data_received
    rests: set[asyncio.Task[None]] = set()

    def data_received(data: bytes, component: int) -> None:
        srtp = dtls._rx_srtp
        if srtp is None or not data or not 127 < data[0] < 192 or is_rtcp(data):
            queued(data, component)
            return
        arrival_time_ms = clock.current_ms()
        try:
            plain = srtp.unprotect(data)
        except pylibsrtp.Error:
            return
        run_now(dtls._handle_rtp_data(plain, arrival_time_ms=arrival_time_ms), rests)

    setattr(connection, _DATA_RECEIVED, data_received)


def run_now(coroutine: Coroutine[Any, Any, None], rests: set[asyncio.Task[None]]) -> None:
    """Run ``coroutine`` here until it waits; the rest, if any, as a task kept in
    ``rests`` until it is done."""
    try:
        waiting_on = coroutine.send(None)
    except (StopIteration, ConnectionError):  # ConnectionError: the leg is closing
        return
    except Exception:
        logger.exception("RTP handling failed")
        return
    task = asyncio.ensure_future(_finish(_Rest(coroutine, waiting_on)))
    rests.add(task)
    task.add_done_callback(rests.discard)


class _Rest:
    """The rest of a coroutine that has already yielded ``waiting_on`` to us: awaiting
    this hands ``waiting_on`` to the task and drives the coroutine on from there."""

    def __init__(self, coroutine: Coroutine[Any, Any, None], waiting_on: Any) -> None:
        self._coroutine = coroutine
        self._waiting_on = waiting_on

    def __await__(self) -> Generator[Any, Any, None]:
        value = self._waiting_on
        while True:
            try:
                sent = yield value
            except BaseException as exc:
                try:
                    value = self._coroutine.throw(exc)
                except StopIteration:
                    return
            else:
                try:
                    value = self._coroutine.send(sent)
                except StopIteration:
                    return


async def _finish(rest: _Rest) -> None:
    try:
        await rest
    except ConnectionError:
        pass
    except Exception:
        logger.exception("RTP handling failed")
