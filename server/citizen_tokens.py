"""Signed entry tokens for citizens arriving from the WeChat mini-program.

The mini-program back end (outside this system) signs a JWT with HMAC-SHA256 using a key
shared with Xiaowu; the mobile page passes it on. Format (docs/protocol.md):

    header  {"alg": "HS256", "typ": "JWT"}
    claims  {"sub": opaque citizen id, "aud": "xiaowu-citizen", "iat": seconds,
             "exp": seconds, optional "name": display name, optional "phone_tail": "1234"}

Only HS256 is accepted (``alg=none`` and every other algorithm are refused), all four
registered claims are required, and a token may live at most ``max_age`` seconds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import jwt

from server.errors import NotAuthenticated
from server.principals import Principal

ALGORITHM = "HS256"
LEEWAY_S = 30


@dataclass(frozen=True)
class TokenPolicy:
    secret: str
    audience: str
    max_age_s: int


class TokenRefused(NotAuthenticated):
    code = "token_invalid"


def _refuse(code: str, zh: str, en: str) -> TokenRefused:
    return TokenRefused(zh, en, code=code)


def mint(policy: TokenPolicy, sub: str, *, ttl_s: int = 3600, name: str | None = None,
         now: float | None = None) -> str:
    issued = int(now if now is not None else time.time())
    claims: dict[str, Any] = {"sub": sub, "aud": policy.audience, "iat": issued,
                              "exp": issued + ttl_s}
    if name:
        claims["name"] = name
    return jwt.encode(claims, policy.secret, algorithm=ALGORITHM)


def verify(policy: TokenPolicy, token: str) -> Principal:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.DecodeError:
        raise _refuse("token_malformed", "入口凭证格式错误", "malformed entry token") from None
    if header.get("alg") != ALGORITHM:
        raise _refuse("token_bad_algorithm", "入口凭证签名算法不被接受",
                      "entry token algorithm not accepted")
    try:
        claims = jwt.decode(
            token, policy.secret, algorithms=[ALGORITHM], audience=policy.audience,
            leeway=LEEWAY_S, options={"require": ["sub", "aud", "exp", "iat"]},
        )
    except jwt.ExpiredSignatureError:
        raise _refuse("token_expired", "入口凭证已过期，请重新进入",
                      "entry token expired") from None
    except jwt.InvalidAudienceError:
        raise _refuse("token_wrong_audience", "入口凭证不适用于本服务",
                      "entry token is for another audience") from None
    except jwt.InvalidSignatureError:
        raise _refuse("token_bad_signature", "入口凭证签名无效",
                      "entry token signature invalid") from None
    except jwt.MissingRequiredClaimError as exc:
        raise _refuse("token_missing_claim", "入口凭证缺少必要信息",
                      f"entry token lacks claim {exc.claim!r}") from None
    except (jwt.ImmatureSignatureError, jwt.InvalidIssuedAtError):
        raise _refuse("token_not_yet_valid", "入口凭证时间无效",
                      "entry token issued in the future") from None
    except jwt.InvalidTokenError:
        raise _refuse("token_malformed", "入口凭证格式错误", "malformed entry token") from None
    if int(claims["exp"]) - int(claims["iat"]) > policy.max_age_s:
        raise _refuse("token_too_long_lived", "入口凭证有效期过长",
                      "entry token lifetime exceeds the allowed maximum")
    sub = claims["sub"]
    if not isinstance(sub, str) or not 1 <= len(sub) <= 128:
        raise _refuse("token_malformed", "入口凭证格式错误", "sub must be a short string")
    name = claims.get("name")
    return Principal(
        role="citizen",
        subject=f"citizen:{sub}",
        display_name=name if isinstance(name, str) else "",
        citizen_name=name if isinstance(name, str) else None,
    )
