"""Email addresses: a well-kept validator (email-validator), IDNA, no control characters, one
spelling per mailbox; and what reaches an admin's terminal from one is escaped."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import insert

from quantsaas.accounts.emails import lookup_email, normalise_email
from quantsaas.accounts.models import User
from quantsaas.accounts.service import Accounts
from quantsaas.accounts.tiers import load_tiers
from quantsaas.cli import main
from quantsaas.errors import EmailTaken, InvalidEmail

PASSWORD = "password123"
ESCAPES = "\x1b]0;pwned\x07\x1b[2J"


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("Alice@Example.COM", "alice@example.com"),
        ("  bob@example.com ", "bob@example.com"),
        ("user@bücher.de", "user@bücher.de"),
        ("user@xn--bcher-kva.de", "user@bücher.de"),  # IDNA: one mailbox, one spelling
        ("admin@localhost", "admin@localhost"),  # the first-start administrator
        ("Admin@LOCALHOST", "admin@localhost"),
        ("a@b.c", "a@b.c"),
    ],
)
def test_valid_addresses_get_one_spelling(text: str, canonical: str) -> None:
    assert normalise_email(text) == canonical


@pytest.mark.parametrize(
    "text",
    [
        f"a{ESCAPES}@example.com",
        "a\u0000b@example.com",
        "a\u202eb@example.com",  # a bidi override
        "a@exam\u200bple.com",  # zero-width space
        "a@example.com\nBcc: x@y.z",
        "no-at-sign",
        "a@b",
        "a@[127.0.0.1]",
        "x" * 250 + "@example.com",
        "u@example.invalid",
        f"root{ESCAPES}@localhost",
    ],
)
def test_invalid_addresses_are_refused_and_quoted_escaped(text: str) -> None:
    with pytest.raises(InvalidEmail) as refused:
        normalise_email(text)
    message = str(refused.value)
    assert "\x1b" not in message and "\x00" not in message and "\u202e" not in message
    assert len(message) < 400


def test_lookup_finds_older_accounts_the_validation_would_refuse() -> None:
    assert lookup_email("Old@Intranet") == "old@intranet"
    with pytest.raises(InvalidEmail):
        lookup_email(f"old{ESCAPES}@intranet")


@pytest.mark.asyncio
async def test_signup_refuses_control_characters_and_idna_twins(accounts: Accounts) -> None:
    for bad in (f"a{ESCAPES}@example.com", "nul\u0000@example.com"):
        with pytest.raises(InvalidEmail):
            await accounts.add_user(bad, PASSWORD)
    user = await accounts.add_user("user@bücher.de", PASSWORD)
    with pytest.raises(EmailTaken):
        await accounts.add_user("USER@xn--bcher-kva.de", PASSWORD)
    assert (await accounts.authenticate("user@xn--bcher-kva.de", PASSWORD)) == user


async def _store_old_rows(url: str) -> None:
    """An address stored before validation existed, and an audit row holding escapes."""
    accounts = await Accounts.open(url, load_tiers())
    try:
        now = (await accounts.add_user("n@example.com", PASSWORD)).created_at
        async with accounts._engine.begin() as conn:
            old = {"password_hash": "x", "tier": "free", "is_admin": False, "disabled": False}
            await conn.execute(
                insert(User).values(
                    email=f"old{ESCAPES}@x.io", created_at=now, password_changed_at=now, **old
                )
            )
        await accounts.audit("user.login_failed", ip="198.51.100.1", detail=f"who{ESCAPES}")
    finally:
        await accounts.close()


def test_the_cli_escapes_what_it_prints(
    accounts_url: str, fast_passwords: None, capsys: pytest.CaptureFixture[str]
) -> None:
    asyncio.run(_store_old_rows(accounts_url))
    for argv in (["users", "list"], ["audit"]):
        assert main([*argv, "--db", accounts_url]) == 0
        out = capsys.readouterr().out
        assert "\x1b" not in out and "\x07" not in out
        assert "\\x1b]0;pwned\\x07" in out
