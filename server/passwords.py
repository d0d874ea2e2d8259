"""Password hashing (argon2id) and generated one-time passwords."""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_HASHER = PasswordHasher()  # argon2id with the library's current recommended costs
_ALPHABET = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
MIN_LENGTH = 10

# Verified against when the username is unknown, so both paths cost one argon2 verify.
_DUMMY_HASH = _HASHER.hash(secrets.token_hex(16))


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    try:
        return _HASHER.verify(stored_hash or _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    return _HASHER.check_needs_rehash(stored_hash)


def generate_password(length: int = 14) -> str:
    """A password people can read aloud and type: no 0/O, 1/l/I.

    Drawn again until it passes ``check_strength``: about one draw in nine is
    letters only, and a generated password must never be refused by the
    server that generated it.
    """
    while True:
        password = "".join(secrets.choice(_ALPHABET) for _ in range(length))
        if check_strength(password) is None:
            return password


def check_strength(password: str) -> str | None:
    """The reason a new password is refused, or None."""
    if len(password) < MIN_LENGTH:
        return f"at least {MIN_LENGTH} characters"
    if password.isdigit() or password.isalpha():
        return "mix letters and digits"
    return None
