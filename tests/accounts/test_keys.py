"""API key text: generation, parsing by position, digests, constant-time comparison."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quantsaas.accounts.keys import digests_match, generate_key, key_digest, parse_key


def test_generated_keys_parse_back_to_their_id_even_with_underscores_in_the_secret() -> None:
    seen_underscore = False
    for _ in range(300):
        text, key_id = generate_key()
        assert parse_key(text) == key_id
        assert len(key_id) == 12 and key_id == key_id.lower()
        assert text.startswith(f"qs_{key_id}_")
        seen_underscore |= "_" in text[len("qs_") + 13 :]
    assert seen_underscore  # the secret alphabet includes "_": parsing must not split on it


def test_generated_keys_are_unique() -> None:
    texts = {generate_key()[0] for _ in range(1000)}
    assert len(texts) == 1000


@pytest.mark.parametrize(
    "text",
    [
        "",
        "qs_",
        "qs_0123456789ab",
        "qs_0123456789ab_",
        "xx_0123456789ab_" + "A" * 43,
        "qs_0123456789AB_" + "A" * 43,  # id must be lowercase hex
        "qs_0123456789ag_" + "A" * 43,
        "qs_0123456789a_" + "A" * 44,  # id one short
        "qs_0123456789ab_" + "A" * 42,
        "qs_0123456789ab_" + "A" * 44,
        "qs_0123456789ab_" + "A" * 42 + "=",
        "qs_0123456789ab_" + "A" * 42 + "é",
        " qs_0123456789ab_" + "A" * 43,
        "qs_0123456789ab_" + "A" * 43 + "\n",
    ],
)
def test_malformed_keys_parse_to_none(text: str) -> None:
    assert parse_key(text) is None


def test_a_well_formed_key_parses() -> None:
    assert parse_key("qs_0123456789ab_" + "A-_" * 14 + "z") == "0123456789ab"


@given(st.text())
def test_parse_key_never_raises(text: str) -> None:
    result = parse_key(text)
    assert result is None or text.startswith(f"qs_{result}_")


def test_digest_is_sha256_hex_of_the_full_text() -> None:
    text, _ = generate_key()
    assert key_digest(text) == hashlib.sha256(text.encode()).hexdigest()
    assert key_digest(text) != key_digest(text[:-1] + ("A" if text[-1] != "A" else "B"))


def test_digests_match_compares_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return bool(real(a, b))

    monkeypatch.setattr(hmac, "compare_digest", spy)
    digest = key_digest("x")
    assert digests_match(digest, key_digest("x"))
    assert not digests_match(digest, key_digest("y"))
    assert not digests_match(digest, "")
    assert len(calls) == 3  # every comparison went through hmac.compare_digest
