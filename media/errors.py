"""Media errors with stable codes; clients switch on ``code``."""

from __future__ import annotations

from server.errors import XiaowuError


class MediaError(XiaowuError):
    code = "media_error"
    status = 400


class InvalidSdp(MediaError):
    code = "invalid_sdp"

    def __init__(self, reason: str) -> None:
        super().__init__("会话描述无效", f"invalid SDP: {reason}", detail={"reason": reason})


class SdesNotSupported(MediaError):
    """An offer keyed with SDES (``a=crypto``) instead of DTLS: the keys would travel in
    the signalling and the server could not authenticate the peer."""

    code = "sdes_not_supported"

    def __init__(self) -> None:
        super().__init__(
            "不支持 SDES 加密，请使用 DTLS-SRTP", "SDES (a=crypto) is not supported; use DTLS-SRTP"
        )


class FingerprintMissing(MediaError):
    code = "dtls_fingerprint_missing"

    def __init__(self, mid: str | None) -> None:
        super().__init__(
            "会话描述缺少 DTLS 指纹", f"media section {mid!r} has no DTLS fingerprint",
            detail={"mid": mid},
        )


class DtlsFailed(MediaError):
    """The DTLS handshake failed, e.g. the certificate does not match the fingerprint."""

    code = "dtls_failed"

    def __init__(self) -> None:
        super().__init__("媒体加密握手失败", "DTLS handshake failed (fingerprint mismatch?)")


class IceFailed(MediaError):
    code = "ice_failed"

    def __init__(self) -> None:
        super().__init__("媒体网络连接失败", "ICE connectivity checks failed")


class NoCommonCodec(MediaError):
    code = "no_common_codec"
    status = 409

    def __init__(self, kind: str, offered: list[str], acceptable: list[str]) -> None:
        super().__init__(
            "双方设备没有共同支持的编码格式",
            f"no common {kind} codec: offered {offered}, session needs one of {acceptable}",
            detail={"kind": kind, "offered": offered, "acceptable": acceptable},
        )


class MediaBusy(MediaError):
    """This media process already carries as many sessions as it was sized for: a new
    session is refused so that the running ones keep their CPU (an overloaded relay
    fails every session at once: late loops, full socket buffers, lost packets)."""

    code = "media_busy"
    status = 503

    def __init__(self, limit: int) -> None:
        super().__init__("视频服务繁忙，请稍后重试",
                         f"the media server carries its maximum of {limit} sessions",
                         detail={"limit": limit})


class MediaInternalsChanged(XiaowuError):
    """aiortc changed underneath the pass-through relay: a server start-up error."""

    code = "media_internals_changed"
    status = 500

    def __init__(self, missing: list[str]) -> None:
        names = ", ".join(missing)
        super().__init__(
            f"aiortc 内部接口已变化：{names}",
            f"aiortc internals changed, missing: {names}",
            detail={"missing": missing},
        )
        self.missing = missing


class MediaWorkerLost(MediaError):
    """The worker process carrying the session's media died (see media/workers.py): the
    participant offers again and the session is placed on a live worker."""

    code = "media_worker_lost"
    status = 503

    def __init__(self, worker: int) -> None:
        super().__init__("视频服务进程中断，正在重新连接", f"media worker {worker} was lost",
                         detail={"worker": worker})
