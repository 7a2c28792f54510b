"""DekCache bounds (age, uses, entries) on a fake clock, eviction, and the disabled mode."""

from __future__ import annotations

import pytest

from vault_server.core.clock import FixedClock
from vault_server.core.errors import InvalidArgument
from vault_server.core.secret import Secret
from vault_server.crypto.dek_cache import CacheKey, DekCache


def key(n: int, ws: str = "ws", cred: str = "cred") -> CacheKey:
    return CacheKey.for_wrapped("local", 1, b"aad", bytes([n]), workspace_id=ws, credential_id=cred)


def dek(n: int) -> Secret:
    return Secret(bytes([n]) * 32)


def cache(clock: FixedClock, *, entries: int = 10, age: float = 60, uses: int = 100) -> DekCache:
    return DekCache(max_entries=entries, max_age_s=age, max_uses=uses, clock=clock)


def test_hit_and_miss(clock: FixedClock) -> None:
    c = cache(clock)
    assert c.get(key(1)) is None
    c.put(key(1), dek(1))
    assert c.get(key(1)) == dek(1)
    assert c.get(key(2)) is None
    stats = c.stats()
    assert (stats.hits, stats.misses, stats.entries) == (1, 2, 1)


def test_max_age(clock: FixedClock) -> None:
    c = cache(clock, age=30)
    c.put(key(1), dek(1))
    clock.advance(29.9)
    assert c.get(key(1)) == dek(1)
    clock.advance(0.1)
    assert c.get(key(1)) is None
    assert len(c) == 0


def test_max_uses(clock: FixedClock) -> None:
    c = cache(clock, uses=3)
    c.put(key(1), dek(1))
    assert [c.get(key(1)) is not None for _ in range(4)] == [True, True, True, False]
    assert len(c) == 0


def test_put_again_resets_age_and_uses(clock: FixedClock) -> None:
    c = cache(clock, uses=1, age=10)
    c.put(key(1), dek(1))
    assert c.get(key(1)) is not None
    clock.advance(9)
    c.put(key(1), dek(1))
    clock.advance(9)
    assert c.get(key(1)) is not None


def test_max_entries_evicts_least_recently_used(clock: FixedClock) -> None:
    c = cache(clock, entries=2)
    c.put(key(1), dek(1))
    c.put(key(2), dek(2))
    assert c.get(key(1)) is not None  # 2 is now the least recently used
    c.put(key(3), dek(3))
    assert len(c) == 2
    assert c.get(key(2)) is None
    assert c.get(key(1)) is not None
    assert c.get(key(3)) is not None


def test_expired_entries_go_before_live_ones(clock: FixedClock) -> None:
    c = cache(clock, entries=2, age=10)
    c.put(key(1), dek(1))
    clock.advance(5)
    c.put(key(2), dek(2))
    clock.advance(6)  # 1 expired, 2 alive
    c.put(key(3), dek(3))
    assert c.get(key(2)) is not None
    assert c.get(key(3)) is not None


def test_flush_and_evict(clock: FixedClock) -> None:
    c = cache(clock)
    c.put(key(1, ws="a"), dek(1))
    c.put(key(2, ws="a", cred="x"), dek(2))
    c.put(key(3, ws="b"), dek(3))
    assert c.evict(lambda k: k.workspace_id == "a" and k.credential_id == "x") == 1
    assert c.evict(lambda k: k.workspace_id == "a") == 1
    assert c.get(key(3, ws="b")) is not None
    assert c.flush() == 1
    assert len(c) == 0


def test_disabled_when_max_entries_is_zero(clock: FixedClock) -> None:
    c = cache(clock, entries=0)
    assert not c.enabled
    c.put(key(1), dek(1))
    assert c.get(key(1)) is None
    assert len(c) == 0


def test_key_digest_covers_aad_and_blob() -> None:
    base = CacheKey.for_wrapped("p", 1, b"aad", b"blob")
    assert base == CacheKey.for_wrapped("p", 1, b"aad", b"blob")
    assert base != CacheKey.for_wrapped("p", 1, b"aa", b"dblob")
    assert base != CacheKey.for_wrapped("p", 1, b"aad", b"blob2")
    assert base != CacheKey.for_wrapped("p", 2, b"aad", b"blob")


@pytest.mark.parametrize(
    ("entries", "age", "uses", "field"),
    [
        (-1, 1, 1, "keys.dek_cache_max_entries"),
        (1, 0, 1, "keys.dek_cache_max_age_s"),
        (1, 1, 0, "keys.dek_cache_max_uses"),
    ],
)
def test_bounds_validated(
    clock: FixedClock, entries: int, age: float, uses: int, field: str
) -> None:
    with pytest.raises(InvalidArgument) as info:
        DekCache(max_entries=entries, max_age_s=age, max_uses=uses, clock=clock)
    assert info.value.field == field


def test_repr_hides_keys(clock: FixedClock) -> None:
    c = cache(clock)
    c.put(key(1), Secret(b"\xee" * 32))
    assert "ee" * 8 not in repr(c)
    assert repr(c).startswith("DekCache(entries=1,")
