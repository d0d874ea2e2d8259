"""Resident identity numbers (公民身份号码, GB 11643-1999): validation and masking.

Eighteen characters: a six-digit address code, the birth date ``YYYYMMDD``, a three-digit
sequence and a check character, ISO 7064 MOD 11-2 over the first seventeen digits (``X``
stands for 10). The check catches every single mistyped digit and every swap of two
neighbours, which is what a clerk copying from a card gets wrong.

The full number is stored with the case (the case file needs it); everything that lists,
logs or audits shows :func:`mask` instead: the first four and last four characters, so a
clerk can still tell two applicants apart on a screen.
"""

from __future__ import annotations

from datetime import date
from typing import NoReturn

from server.errors import BadRequest

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK_CHARACTERS = "10X98765432"
LENGTH = 18
_VISIBLE = 4


def check_character(first17: str) -> str:
    """The check character for seventeen digits."""
    if len(first17) != LENGTH - 1 or not first17.isascii() or not first17.isdigit():
        raise ValueError(f"need 17 digits, got {first17!r}")
    total = sum(int(digit) * weight for digit, weight in zip(first17, WEIGHTS, strict=True))
    return CHECK_CHARACTERS[total % 11]


def normalize(raw: str) -> str:
    """Spaces removed, a lower-case ``x`` made upper-case (as people type it)."""
    return "".join(raw.split()).upper()


def validate(raw: str, *, today: date | None = None) -> str:
    """The normalized number, or ``id_number_invalid`` naming what is wrong."""
    number = normalize(raw)
    if len(number) != LENGTH:
        _invalid("length", "长度应为 18 位", f"must be {LENGTH} characters, got {len(number)}")
    body, check = number[:-1], number[-1]
    if not (body.isascii() and body.isdigit()) or check not in CHECK_CHARACTERS:
        _invalid("characters", "只能包含数字，最后一位可以是 X",
                 "only digits, with an X allowed as the last character")
    if body[0] == "0":
        _invalid("address_code", "地址码无效", "the address code cannot start with 0")
    try:
        born = date(int(body[6:10]), int(body[10:12]), int(body[12:14]))
    except ValueError:
        _invalid("birth_date", "出生日期无效", f"{body[6:14]} is not a date")
    if born.year < 1900 or born > (today or date.today()):
        _invalid("birth_date", "出生日期无效", f"birth date {born.isoformat()} is out of range")
    if check_character(body) != check:
        _invalid("check_digit", "校验码不符，请核对号码", "the check character does not match")
    return number


def mask(number: str | None) -> str | None:
    """``3701**********1234``: what lists, logs and audit lines carry."""
    if number is None:
        return None
    if len(number) <= 2 * _VISIBLE:
        return "*" * len(number)
    return number[:_VISIBLE] + "*" * (len(number) - 2 * _VISIBLE) + number[-_VISIBLE:]


def _invalid(reason: str, zh: str, en: str) -> NoReturn:
    raise BadRequest(f"身份证号码无效：{zh}", f"identity number invalid: {en}",
                     code="id_number_invalid", detail={"field": "id_number", "reason": reason})
