"""Password hashing: argon2id parameters, length limits, verify and rehash."""

from __future__ import annotations

import pytest
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from quantsaas.accounts import passwords
from quantsaas.accounts.passwords import check_password, hash_password, verify_password
from quantsaas.errors import AccountError, WeakPassword

pytestmark = pytest.mark.usefixtures("fast_passwords")


def test_the_default_hasher_is_argon2id_with_the_recommended_costs() -> None:
    real = PasswordHash.recommended()
    hashed = real.hash("correct horse")
    assert hashed.startswith("$argon2id$v=19$m=65536,t=3,p=4$")


def test_hash_then_verify(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(passwords, "HASHER", PasswordHash.recommended())
    hashed = hash_password("correct horse battery")
    assert hashed.startswith("$argon2id$") and "correct" not in hashed
    assert verify_password("correct horse battery", hashed) == (True, None)
    assert verify_password("correct horse batterY", hashed) == (False, None)
    assert hash_password("correct horse battery") != hashed  # salted


@pytest.mark.parametrize("length", [8, 64, 128])
def test_lengths_inside_the_range_are_accepted(length: int) -> None:
    check_password("p" * length)
    assert verify_password("p" * length, hash_password("p" * length))[0]


@pytest.mark.parametrize("length", [0, 7, 129, 10_000])
def test_lengths_outside_the_range_are_refused(length: int) -> None:
    with pytest.raises(WeakPassword):
        hash_password("p" * length)
    assert issubclass(WeakPassword, AccountError) and issubclass(WeakPassword, ValueError)


def test_unicode_passwords_work() -> None:
    hashed = hash_password("пароль-密码-🔑🔑")
    assert verify_password("пароль-密码-🔑🔑", hashed)[0]
    assert not verify_password("пароль-密码-🔑", hashed)[0]


def test_overlong_input_is_rejected_without_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    hashed = hash_password("p" * 20)

    def boom(*_: object) -> tuple[bool, str | None]:
        raise AssertionError("hashed an overlong password")

    monkeypatch.setattr(passwords.HASHER, "verify_and_update", boom)
    assert verify_password("p" * 100_000, hashed) == (False, None)


@pytest.mark.parametrize("stored", ["", "plaintext", "$argon2id$v=19$m=65536,t=3,p=4$xx$yy"])
def test_a_corrupt_stored_hash_fails_verification(stored: str) -> None:
    assert verify_password("password123", stored) == (False, None)


def test_outdated_parameters_give_a_new_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    old = hash_password("password123")  # the cheap test hasher
    stronger = PasswordHash((Argon2Hasher(time_cost=2, memory_cost=2048, parallelism=1),))
    monkeypatch.setattr(passwords, "HASHER", stronger)
    ok, new = verify_password("password123", old)
    assert ok and new is not None and "m=2048,t=2" in new
    assert verify_password("password123", new) == (True, None)
    assert verify_password("wrong-password", old) == (False, None)
