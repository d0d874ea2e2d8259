"""The SMS boundary. Real SMS gateways cannot run here; demo mode logs the code instead.

A production deployment implements ``SmsSender`` for its operator's gateway and passes it
to ``create_app``; nothing else in the system knows how a text message leaves.
"""

from __future__ import annotations

from typing import Protocol

import structlog

log = structlog.get_logger("xiaowu.sms")


class SmsSender(Protocol):
    async def send(self, phone: str, text: str) -> None: ...


def mask_phone(phone: str) -> str:
    return phone[:3] + "****" + phone[-4:] if len(phone) >= 7 else "***"


class LogSmsSender:
    """Writes the message to the log (demo and tests). Keeps the last one per phone."""

    def __init__(self) -> None:
        self.sent: dict[str, str] = {}

    async def send(self, phone: str, text: str) -> None:
        self.sent[phone] = text
        log.warning("sms.demo_delivery", phone=mask_phone(phone), text=text)
