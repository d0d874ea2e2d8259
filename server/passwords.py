"""Password hashing (argon2id) and generated one-time passwords.

An argon2id hash or verify takes about 200 ms of CPU and 64 MiB of memory by design. Run
on the event loop, each clerk login stopped every call's signaling for that long (100
clerks signing in at shift start: 20 s of stalls); the ``*_off_loop`` forms run it on a
small dedicated thread pool instead (argon2-cffi releases the GIL), whose size also bounds
the memory a burst of logins can take.
"""

from __future__ import annotations

import asyncio
import secrets
from concurrent.futures import ThreadPoolExecutor

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


_ARGON2_THREADS = 2
_pool: ThreadPoolExecutor | None = None


def _executor() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(_ARGON2_THREADS, thread_name_prefix="argon2")
    return _pool


async def hash_password_off_loop(password: str) -> str:
    return await asyncio.get_running_loop().run_in_executor(_executor(), hash_password,
                                                            password)


async def verify_password_off_loop(stored_hash: str | None, password: str) -> bool:
    return await asyncio.get_running_loop().run_in_executor(_executor(), verify_password,
                                                            stored_hash, password)


def needs_rehash(stored_hash: str) -> bool:
    return _HASHER.check_needs_rehash(stored_hash)


def generate_password(length: int = 14) -> str:
    """A password people can read aloud and type: no 0/O, 1/l/I.

    Drawn again until it passes ``check_strength``: about one draw in nine is
    letters only, and a generated password must never be refused by the
    server that generated it.
    """
    if length < MIN_LENGTH:
        raise ValueError(f"a generated password needs at least {MIN_LENGTH} characters")
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
