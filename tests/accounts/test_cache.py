"""The in-process credential cache: invalidation, the lookup race, session expiry."""

from __future__ import annotations

from quantsaas.accounts.cache import CredentialCache
from quantsaas.accounts.views import Principal

ALICE = Principal(1, "alice@b.c", "free", False, "aaaaaaaaaaaa")
ALICE_2 = Principal(1, "alice@b.c", "free", False, "bbbbbbbbbbbb")
BOB = Principal(2, "bob@b.c", "pro", False, "cccccccccccc")
ALICE_WEB = Principal(1, "alice@b.c", "free", False, None, session=True)


def test_a_lookup_that_raced_with_an_invalidation_is_not_cached() -> None:
    cache = CredentialCache()
    before = cache.generation  # the lookup starts, reads the row ...
    cache.forget_key("aaaaaaaaaaaa")  # ... the key is revoked meanwhile ...
    cache.put_key("d1", ALICE, before)  # ... and the lookup finishes: not stored
    assert cache.keys == {}
    cache.put_key("d1", ALICE, cache.generation)
    assert cache.keys == {"d1": ALICE}


def test_forgetting_keys_users_and_sessions() -> None:
    cache = CredentialCache()
    for digest, principal in (("d1", ALICE), ("d2", ALICE_2), ("d3", BOB)):
        cache.put_key(digest, principal, cache.generation)
    cache.put_session("s1", ALICE_WEB, expires=100.0, generation=cache.generation)
    cache.forget_key("bbbbbbbbbbbb")
    assert set(cache.keys) == {"d1", "d3"}
    cache.forget_user(1)
    assert set(cache.keys) == {"d3"} and cache.sessions == {}
    cache.put_session("s2", ALICE_WEB, expires=100.0, generation=cache.generation)
    cache.forget_session("s2")
    assert cache.session("s2", 0.0) is None


def test_sessions_expire_and_are_pruned() -> None:
    cache = CredentialCache()
    cache.put_session("s1", ALICE_WEB, expires=100.0, generation=0)
    cache.put_session("s2", ALICE_WEB, expires=200.0, generation=0)
    assert cache.session("s1", 99.0) == ALICE_WEB
    assert cache.session("s1", 100.0) is None
    assert "s1" not in cache.sessions  # dropped on the expired lookup
    cache.put_session("s3", ALICE_WEB, expires=150.0, generation=0)
    cache.prune(160.0)
    assert set(cache.sessions) == {"s2"}
