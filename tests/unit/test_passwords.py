import pytest

from server.passwords import (
    MIN_LENGTH,
    check_strength,
    generate_password,
    hash_password,
    verify_password,
)


def test_generated_passwords_always_pass_the_strength_rule() -> None:
    # About one plain draw in nine is letters only; 500 draws would hit that
    # hundreds of times if the generator did not redraw.
    for _ in range(500):
        password = generate_password()
        assert check_strength(password) is None, password
        assert len(password) == 14


def test_strength_rule_reasons() -> None:
    assert check_strength("a1" * (MIN_LENGTH // 2 - 1)) == f"at least {MIN_LENGTH} characters"
    assert check_strength("abcdefghijkl") == "mix letters and digits"
    assert check_strength("123456789012") == "mix letters and digits"
    assert check_strength("abcdef123456") is None


def test_hash_round_trip_and_unknown_user() -> None:
    stored = hash_password("abcdef123456")
    assert verify_password(stored, "abcdef123456")
    assert not verify_password(stored, "abcdef123457")
    assert not verify_password(None, "abcdef123456")


def test_a_password_too_short_to_pass_is_never_generated() -> None:
    with pytest.raises(ValueError):
        generate_password(MIN_LENGTH - 1)
    assert check_strength(generate_password(MIN_LENGTH)) is None
