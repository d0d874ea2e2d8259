"""The root exception and its stable error codes.

Clients switch on ``code`` and never on the prose; ``message`` is Simplified Chinese
first with English second, because the people reading it are citizens and clerks.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError


class XiaowuError(Exception):
    """Base of every error the system reports to a client.

    ``status`` is the HTTP status used when the error crosses the HTTP API.
    """

    code: str = "internal_error"
    status: int = 500

    def __init__(
        self,
        message_zh: str,
        message_en: str,
        *,
        code: str | None = None,
        status: int | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.message_zh = message_zh
        self.message_en = message_en
        self.detail = detail or {}
        super().__init__(f"{self.code}: {message_en}")

    @property
    def message(self) -> str:
        return f"{self.message_zh} / {self.message_en}"

    def to_dict(self) -> dict[str, Any]:
        """The wire form used by HTTP bodies and socket.io acks: ``{code, message}``."""
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.detail:
            body["detail"] = self.detail
        return body


class BadRequest(XiaowuError):
    code = "bad_request"
    status = 400


class NotAuthenticated(XiaowuError):
    code = "not_authenticated"
    status = 401


def invalid_payload(exc: ValidationError, whole: str) -> BadRequest:
    """``invalid_payload`` naming the first bad field (``whole`` when it is the payload
    itself), for HTTP bodies and socket.io events alike."""
    first = exc.errors()[0]
    field = ".".join(str(part) for part in first["loc"]) or whole
    return BadRequest(f"字段 {field} 无效：{first['msg']}", f"{field}: {first['msg']}",
                      code="invalid_payload", detail={"field": field})


class Forbidden(XiaowuError):
    code = "forbidden"
    status = 403


class NotFound(XiaowuError):
    code = "not_found"
    status = 404


class Conflict(XiaowuError):
    code = "conflict"
    status = 409


class TooManyRequests(XiaowuError):
    code = "rate_limited"
    status = 429


class InvalidTransition(XiaowuError):
    """A state machine was asked for a transition its current state does not allow."""

    code = "invalid_transition"
    status = 409
