"""Entry tokens from the mini-program: only well-formed, HS256, in-date, ours."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest

from server.citizen_tokens import TokenPolicy, TokenRefused, mint, verify

POLICY = TokenPolicy(secret="s" * 64, audience="xiaowu-citizen", max_age_s=3600)


def _code(token: str, policy: TokenPolicy = POLICY) -> str:
    with pytest.raises(TokenRefused) as caught:
        verify(policy, token)
    return caught.value.code


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _claims(**overrides: object) -> dict[str, object]:
    now = int(time.time())
    claims: dict[str, object] = {"sub": "wx-openid-123", "aud": "xiaowu-citizen",
                                 "iat": now, "exp": now + 600}
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def test_a_good_token_names_the_citizen() -> None:
    principal = verify(POLICY, mint(POLICY, "wx-openid-123", name="付宇航"))
    assert principal.role == "citizen"
    assert principal.subject == "citizen:wx-openid-123"
    assert principal.citizen_name == "付宇航"


def test_expired_token_is_refused() -> None:
    old = time.time() - 7200
    assert _code(mint(POLICY, "a", ttl_s=600, now=old)) == "token_expired"


def test_wrong_signature_is_refused() -> None:
    forged = jwt.encode(_claims(), "another-key-" + "k" * 40, algorithm="HS256")
    assert _code(forged) == "token_bad_signature"


def test_wrong_audience_is_refused() -> None:
    token = jwt.encode(_claims(aud="some-other-service"), POLICY.secret, algorithm="HS256")
    assert _code(token) == "token_wrong_audience"


def test_alg_none_is_refused() -> None:
    unsigned = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims())}."
    assert _code(unsigned) == "token_bad_algorithm"


def test_other_hmac_algorithms_are_refused() -> None:
    token = jwt.encode(_claims(), POLICY.secret, algorithm="HS512")
    assert _code(token) == "token_bad_algorithm"


@pytest.mark.parametrize("claim", ["sub", "aud", "exp", "iat"])
def test_every_registered_claim_is_required(claim: str) -> None:
    token = jwt.encode(_claims(**{claim: None}), POLICY.secret, algorithm="HS256")
    assert _code(token) in {"token_missing_claim", "token_wrong_audience"}
    if claim != "aud":
        assert _code(token) == "token_missing_claim"


def test_token_issued_in_the_future_is_refused() -> None:
    future = int(time.time()) + 3600
    token = jwt.encode(_claims(iat=future, exp=future + 600), POLICY.secret, algorithm="HS256")
    assert _code(token) == "token_not_yet_valid"


def test_overlong_lifetime_is_refused() -> None:
    token = mint(POLICY, "a", ttl_s=POLICY.max_age_s + 60)
    assert _code(token) == "token_too_long_lived"


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "x" * 500])
def test_garbage_is_malformed(garbage: str) -> None:
    assert _code(garbage) == "token_malformed"
