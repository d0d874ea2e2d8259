"""ICE servers for browsers and for the server's own peers, with TURN REST credentials.

No public STUN server is ever used by default: aiortc falls back to one when given
nothing, so the configuration is always explicit (an empty list on a LAN or loopback).
TURN credentials follow coturn's ``use-auth-secret`` scheme: the username is
``<expiry unix time>:<subject>``, the password ``base64(HMAC-SHA1(secret, username))``,
so they expire on their own and the secret never leaves the server.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any

from aiortc import RTCIceServer

from server.settings import Settings


def turn_credentials(secret: str, subject: str, ttl_s: int,
                     now: float | None = None) -> tuple[str, str]:
    expiry = int((now if now is not None else time.time()) + ttl_s)
    username = f"{expiry}:{subject}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode()


def browser_ice_servers(settings: Settings, subject: str) -> list[dict[str, Any]]:
    """The ``iceServers`` a client page passes to ``RTCPeerConnection``."""
    servers: list[dict[str, Any]] = []
    if settings.stun_urls:
        servers.append({"urls": list(settings.stun_urls)})
    if settings.turn_urls and settings.turn_secret:
        username, credential = turn_credentials(settings.turn_secret, subject,
                                                settings.turn_ttl_s)
        servers.append({"urls": list(settings.turn_urls), "username": username,
                        "credential": credential})
    return servers


def server_ice_servers(settings: Settings) -> tuple[RTCIceServer, ...]:
    """The same servers for the server's aiortc peers (aiortc uses the first of each)."""
    return tuple(
        RTCIceServer(urls=entry["urls"], username=entry.get("username"),
                     credential=entry.get("credential"))
        for entry in browser_ice_servers(settings, "xiaowu-media")
    )
